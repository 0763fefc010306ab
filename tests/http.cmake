# Tests of http/ (the server both daemons use) and the agent's routes over
# it (rack-agent/files/http_route.c).
rackboot_unit_test(test_http_range LIBS rb_http)
rackboot_fuzz_target(fuzz_http_range LIBS rb_http)
# The server on a loopback socket with test routes and a raw HTTP client.
rackboot_unit_test(test_http_server LIBS rb_http Threads::Threads TIMEOUT 60)
# listen(2) wrapped, so a client can be waiting before the first loop pass.
target_link_options(test_http_server PRIVATE -Wl,--wrap=listen)
# The server with TLS: a certificate made by the test, an OpenSSL client.
rackboot_unit_test(test_http_tls LIBS rb_http Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
# Routes answered through files.h: the TFTP root and a source that answers
# later, as the image cache does.
rackboot_unit_test(test_http_files LIBS rb_http rb_files Threads::Threads)
# The [http] section of the agent's configuration.
rackboot_unit_test(test_http_config LIBS rb_agent)

# curl and raw clients against the agent in network namespaces (root and
# `ip netns`, else skipped with 77).
foreach(t curl slow limits)
  add_test(NAME integration.http_${t}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/http_${t}.sh
                   $<TARGET_FILE:rackboot-agent>)
  set_tests_properties(integration.http_${t} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                       LABELS integration)
endforeach()

# The request target's decoding before routing (http/server-internal.h).
rackboot_fuzz_target(fuzz_http_path LIBS rb_http)
