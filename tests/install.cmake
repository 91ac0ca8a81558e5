# The install check (tests/install_check.sh): `cmake --install` into a
# temporary prefix, then a program built against the installed header and
# libraries through pkg-config.  It needs the whole build done, which ctest
# runs after.
add_test(NAME install_check
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh ${CMAKE_BINARY_DIR}
          ${CMAKE_C_COMPILER} "${MG_SANITIZE}")
set_tests_properties(install_check PROPERTIES TIMEOUT 300)
