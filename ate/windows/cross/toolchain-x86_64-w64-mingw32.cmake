# CMake toolchain for the Windows build of the tester library: Debian's mingw-w64, the POSIX
# threads flavour (std::thread and std::mutex on winpthreads, which the DLL links statically).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
# Windows 10: libzmq derives _WIN32_WINNT (0x0A00) from it; the DLL uses the same.
set(CMAKE_SYSTEM_VERSION 10.0)
set(WAFERPROV_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${WAFERPROV_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${WAFERPROV_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${WAFERPROV_MINGW_TRIPLE}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${WAFERPROV_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
