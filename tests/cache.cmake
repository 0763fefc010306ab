# Tests of rack-agent/cache/.
rackboot_unit_test(test_cache LIBS rb_cache TIMEOUT 120)
rackboot_unit_test(test_cache_images LIBS rb_cache TIMEOUT 60)
rackboot_unit_test(test_cache_config LIBS rb_agent)
# The cache behind files/files.h.
rackboot_unit_test(test_cache_files LIBS rb_cache rb_files)

# The cache end to end: an nginx origin, the agent and real clients (tftp,
# curl) in network namespaces. Needs root and `ip netns`, else skips (77).
foreach(t serve)
  add_test(NAME integration.cache_${t}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/cache_${t}.sh
                   $<TARGET_FILE:rackboot-agent>)
  set_tests_properties(integration.cache_${t} PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
                       LABELS integration)
endforeach()
