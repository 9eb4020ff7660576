# Runs one libFuzzer target for SECONDS seconds (cmake -P; see
# CMakeLists.txt): FUZZER, the binary; SEEDS, its committed corpus, only
# read; WORK, a folder in the build tree for the corpus it grows (a fresh
# copy of SEEDS each run) and the artifacts of a failure; DICT, a libFuzzer
# dictionary, used when that file exists.
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: ${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK}/corpus)
file(COPY ${SEEDS}/ DESTINATION ${WORK}/corpus)
file(MAKE_DIRECTORY ${WORK}/artifacts)
set(dict_option)
if(DEFINED DICT AND EXISTS ${DICT})
  set(dict_option -dict=${DICT})
endif()
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10
          -print_final_stats=1 ${dict_option} -artifact_prefix=${WORK}/artifacts/
          ${WORK}/corpus
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); the input is in ${WORK}/artifacts/")
endif()
