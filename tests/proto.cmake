# Tests of proto/.
rackboot_unit_test(test_proto LIBS rb_proto)
# The test checks that every committed seed of the fuzz corpus is still a
# valid message, and rewrites the seeds when RBPROTO_WRITE_CORPUS is set.
target_compile_definitions(test_proto PRIVATE
  RBPROTO_CORPUS_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/fuzz_proto")
rackboot_fuzz_target(fuzz_proto LIBS rb_proto)
