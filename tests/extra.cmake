# Wiring for the wire-layer suites that need more than the runner and the
# library.  Included by tests/CMakeLists.txt after the suites are defined.

# Conformance against Debian's msgpack-c (libmsgpack-dev): required, so a
# missing package fails the configure step loudly instead of skipping.
if(TARGET test_wire_conformance)
  find_path(MG_MSGPACKC_INCLUDE_DIR msgpack.h REQUIRED)
  find_library(MG_MSGPACKC_LIBRARY NAMES msgpackc msgpack-c REQUIRED)
  target_include_directories(test_wire_conformance SYSTEM PRIVATE ${MG_MSGPACKC_INCLUDE_DIR})
  target_link_libraries(test_wire_conformance PRIVATE ${MG_MSGPACKC_LIBRARY})
  target_sources(test_wire_conformance PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/conformance/mpvalue.c)
endif()

# Conformance against python3-msgpack: tests/conformance/check_python.py
# drives the wire_vectors helper, whose path the suite is built with.
if(TARGET test_wire_python)
  add_executable(wire_vectors ${CMAKE_CURRENT_SOURCE_DIR}/conformance/wire_vectors.c
                              ${CMAKE_CURRENT_SOURCE_DIR}/conformance/mpvalue.c)
  target_compile_options(wire_vectors PRIVATE ${MG_WARNINGS})
  target_include_directories(wire_vectors PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(wire_vectors PRIVATE mitogen_static)
  add_dependencies(test_wire_python wire_vectors)
  target_compile_definitions(test_wire_python PRIVATE
    MG_WIRE_VECTORS="$<TARGET_FILE:wire_vectors>")
endif()

# The fuzz targets' bodies, replayed over their corpora in every build.
if(TARGET test_wire_corpus)
  target_sources(test_wire_corpus PRIVATE
    ${CMAKE_SOURCE_DIR}/fuzz/fuzz_msgpack_reader.c
    ${CMAKE_SOURCE_DIR}/fuzz/fuzz_fmt_unpack.c
    ${CMAKE_SOURCE_DIR}/fuzz/fuzz_frame_decode.c)
  target_compile_definitions(test_wire_corpus PRIVATE MG_FUZZ_REPLAY)
  target_include_directories(test_wire_corpus PRIVATE ${CMAKE_SOURCE_DIR}/fuzz)
endif()
