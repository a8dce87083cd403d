# Per-target build settings and the one test helper every directory uses.
include(GoogleTest)

# Warnings (and -Werror when WAFERPROV_WERROR is on) for a target we own.
function(waferprov_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
  if(WAFERPROV_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# ASan/UBSan for every target when WAFERPROV_SANITIZE is on (set at directory scope so that
# Verilator-generated code and test executables are instrumented alike).
if(WAFERPROV_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # The instrumentation changes GCC 12's flow analysis: libstdc++'s own std::regex then warns
  # "may be used uninitialized" (GCC bug 105616), which -Werror would make fatal. The normal
  # build keeps the warning as an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()

# waferprov_library(NAME <dir-name> SOURCES ... [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
# One library per directory: target waferprov_<name>, alias waferprov::<name>, headers in the
# directory's include/ folder.
function(waferprov_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  add_library(waferprov_${name} ${ARG_SOURCES})
  add_library(waferprov::${name} ALIAS waferprov_${name})
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_include_directories(waferprov_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  endif()
  target_link_libraries(waferprov_${name} PUBLIC ${ARG_PUBLIC_LIBS} PRIVATE ${ARG_PRIVATE_LIBS})
  waferprov_set_warnings(waferprov_${name})
endfunction()

# waferprov_add_test(<name> SOURCES ... [LIBS ...] [LABELS label] [TIMEOUT s])
# A GoogleTest executable whose tests CTest discovers one by one. Every test gets the one label
# given (default: "unit"); long runs carry "soak" and are excluded from the default suite.
function(waferprov_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  if(WAFERPROV_SANITIZE)  # programs run several times slower (testing::kSlowdown, process.hpp)
    math(EXPR ARG_TIMEOUT "${ARG_TIMEOUT} * 4")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    WAFERPROV_VECTOR_DIR="${WAFERPROV_VECTOR_DIR}"
    WAFERPROV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  waferprov_set_warnings(${name})
  # gtest_discover_tests (CMake 3.25) writes a list-valued property unquoted, so a second label
  # would be read as a property name: one label per test executable.
  list(LENGTH ARG_LABELS n_labels)
  if(NOT n_labels EQUAL 1)
    message(FATAL_ERROR "waferprov_add_test(${name}): give exactly one label, got '${ARG_LABELS}'")
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${ARG_LABELS} TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

# waferprov_add_cli_test(<name> SOURCES ... [LIBS ...] [LABELS label] [TIMEOUT s]
#                        [PROGRAMS <MACRO>=<target>...])
# The one way to test the `waferprov` command as a user runs it: a GoogleTest program (as
# waferprov_add_test) that runs the built binary, named by WAFERPROV_BINARY, through
# waferprov::testing::run_cli() or the process helpers. PROGRAMS names further programs the test
# runs (the tester simulator, an example client) as MACRO="<path>". Building the test builds
# everything it runs.
function(waferprov_add_cli_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;LABELS" "SOURCES;LIBS;PROGRAMS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  waferprov_add_test(${name} SOURCES ${ARG_SOURCES} LIBS ${ARG_LIBS} waferprov::testing
    LABELS ${ARG_LABELS} TIMEOUT ${ARG_TIMEOUT})
  target_compile_definitions(${name} PRIVATE WAFERPROV_BINARY="$<TARGET_FILE:waferprov>")
  add_dependencies(${name} waferprov)
  foreach(program IN LISTS ARG_PROGRAMS)
    string(REPLACE "=" ";" parts "${program}")
    list(GET parts 0 macro)
    list(GET parts 1 target)
    target_compile_definitions(${name} PRIVATE ${macro}="$<TARGET_FILE:${target}>")
    add_dependencies(${name} ${target})
  endforeach()
endfunction()

# waferprov_rtl_files(<var> <list>)
# Reads rtl/<list> (e.g. symmetric/sym_die.f): one source per line, relative to rtl/, '#' starts
# a comment line. Sets <var> to the absolute paths, in order. The same lists feed the benches,
# lint, the models and tools/synth, so a block's sources are named once.
function(waferprov_rtl_files var list)
  set(path ${PROJECT_SOURCE_DIR}/rtl/${list})
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "waferprov_rtl_files: no file list ${path}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
  file(STRINGS ${path} lines)
  set(files "")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/rtl/${line})
      message(FATAL_ERROR "${path}: ${line} does not exist under rtl/")
    endif()
    list(APPEND files ${PROJECT_SOURCE_DIR}/rtl/${line})
  endforeach()
  set(${var} ${files} PARENT_SCOPE)
endfunction()

# waferprov_verilate(<target> TOP <module> [FILELISTS <half/block.f>...] [SOURCES <sv>...]
#                    [PREFIX <class>] [ARGS <verilator args>...])
# The one way to verilate: a static library <target> holding one Verilated configuration of an
# RTL top (class <PREFIX>, default V<module>), built once and linked by every bench, backend and
# model that needs it. Sources come from the block file lists (rtl/<half>/<block>.f) and/or
# explicit files (bench wrappers), in that order. Verilator's output is not ours to fix: it is
# compiled without our warnings, and consumers see its headers as system headers so that our
# -Wconversion -Werror applies only to our own code.
function(waferprov_verilate target)
  cmake_parse_arguments(ARG "" "TOP;PREFIX" "FILELISTS;SOURCES;ARGS" ${ARGN})
  if(NOT ARG_TOP)
    message(FATAL_ERROR "waferprov_verilate(${target}): TOP is required")
  endif()
  if(NOT ARG_PREFIX)
    set(ARG_PREFIX V${ARG_TOP})
  endif()
  set(files "")
  foreach(list IN LISTS ARG_FILELISTS)
    waferprov_rtl_files(listed ${list})
    list(APPEND files ${listed})
  endforeach()
  list(APPEND files ${ARG_SOURCES})
  list(REMOVE_DUPLICATES files)
  if(NOT files)
    message(FATAL_ERROR "waferprov_verilate(${target}): no sources")
  endif()
  add_library(${target} STATIC)
  verilate(${target} SOURCES ${files} TOP_MODULE ${ARG_TOP} PREFIX ${ARG_PREFIX}
    DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${target}.verilated
    VERILATOR_ARGS -Wall -O3 --x-assign fast --x-initial fast ${ARG_ARGS})
  target_compile_options(${target} PRIVATE -w)
  get_target_property(includes ${target} INTERFACE_INCLUDE_DIRECTORIES)
  set_target_properties(${target} PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${includes}")
endfunction()
