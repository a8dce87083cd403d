# The layers, checked when the build is configured (docs/architecture.md draws them):
#
#   drivers/    common <- software, card <- verilator <- backends; card_regs, xdma
#               (no host/, no ate/); the Verilated card models (sim/card_rtl:
#               waferprov_card_harness) only through verilator, i.e. in verilator, backends and
#               what links backends
#               reference, testing: test-only (the reference model, TempDir, child
#               processes, the SoftHSM2 token); no product library or command links them
#   host/       model, kat, wafermap, ca, ledger, report, job, protocol, pipeline, service,
#               metrics (Prometheus; the service only knows its ServiceObserver interface)
#               <- cli (the `waferprov` command names everything it links)
#   ate/src     libwaferprov_ate.so: the protocol codec and drivers/common only, so a test
#               program loads nothing of the host
#   ate/tester  the simulator: may use host libraries (it checks payloads as a die would)
#
# waferprov_check_layers() walks each library's link closure (LINK_LIBRARIES and
# INTERFACE_LINK_LIBRARIES, through aliases and $<LINK_ONLY:...>) and stops the configure step
# with the offending edge when a library reaches one it must not.

# Sets <out> to the waferprov_* targets <target> links, directly or transitively.
function(_waferprov_link_closure target out)
  set(seen "")
  set(todo ${target})
  while(todo)
    list(POP_FRONT todo t)
    if(NOT TARGET ${t})
      continue()
    endif()
    get_target_property(real ${t} ALIASED_TARGET)
    if(real)
      set(t ${real})
    endif()
    if(t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    set(deps "")
    get_target_property(type ${t} TYPE)
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(direct ${t} LINK_LIBRARIES)
      if(direct)
        list(APPEND deps ${direct})
      endif()
    endif()
    get_target_property(iface ${t} INTERFACE_LINK_LIBRARIES)
    if(iface)
      list(APPEND deps ${iface})
    endif()
    foreach(d IN LISTS deps)
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" d "${d}")
      if(TARGET ${d})
        list(APPEND todo ${d})
      endif()
    endforeach()
  endwhile()
  list(REMOVE_ITEM seen ${target})
  list(FILTER seen INCLUDE REGEX "^waferprov")
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# _waferprov_require_only(<target> <allowed waferprov_* targets...>)
function(_waferprov_require_only target)
  _waferprov_link_closure(${target} closure)
  foreach(dep IN LISTS closure)
    if(NOT dep IN_LIST ARGN)
      message(FATAL_ERROR "layering: ${target} links ${dep}; it may link only: ${ARGN} "
                          "(see cmake/WaferprovLayers.cmake)")
    endif()
  endforeach()
endfunction()

function(waferprov_check_layers)
  # The product's drivers, and the test-only libraries (reference model, test helpers) that
  # nothing in the product may link.
  set(drivers waferprov_common waferprov_software waferprov_backends waferprov_card_regs
    waferprov_xdma waferprov_card)
  if(TARGET waferprov_verilator)
    list(APPEND drivers waferprov_verilator)
  endif()
  # The card models reach the product only through the Verilator transport.
  set(sim_models waferprov_card_harness)
  set(test_only waferprov_reference waferprov_testing)
  foreach(lib IN LISTS drivers)
    if(lib STREQUAL "waferprov_verilator" OR lib STREQUAL "waferprov_backends")
      _waferprov_require_only(${lib} ${drivers} ${sim_models})
    else()
      _waferprov_require_only(${lib} ${drivers})
    endif()
  endforeach()
  foreach(lib IN LISTS test_only)
    _waferprov_require_only(${lib} ${drivers} ${sim_models} ${test_only})
  endforeach()
  # The tester's shared library: the codec and drivers/common, nothing else of ours.
  _waferprov_require_only(waferprov_ate waferprov_protocol waferprov_common)
  # Host libraries never reach the tester side.
  set(host waferprov_model waferprov_kat waferprov_wafermap waferprov_ca waferprov_ledger
    waferprov_report waferprov_job waferprov_protocol waferprov_pipeline waferprov_service
    waferprov_metrics)
  foreach(lib IN LISTS host)
    _waferprov_require_only(${lib} ${host} ${drivers} ${sim_models})
  endforeach()
  # The probe card's stepping (ate/tester, shared with sim/floor): the map readers only.
  _waferprov_require_only(waferprov_probe_card ${host} ${drivers})
  # The models (sim/card, sim/floor): the drivers' register map, the map readers and the
  # probe card's stepping; never the tester link, the ledger or the service.
  set(models waferprov_card_tlm waferprov_floor)
  if(TARGET waferprov_card_tlm)
    _waferprov_require_only(waferprov_card_tlm ${drivers})
    _waferprov_require_only(waferprov_floor waferprov_card_tlm waferprov_probe_card
      waferprov_wafermap waferprov_model ${drivers})
  endif()
  # The command: the host, the product's drivers and the models (`plan`), no test code.
  _waferprov_require_only(waferprov ${host} ${drivers} ${models} waferprov_probe_card
    ${sim_models})
endfunction()
