# Tests of pki/.
# The library: certificate format, verifier, CA directory, identity handshake.
rackboot_unit_test(test_pki LIBS rb_pki TIMEOUT 120)

# The tool, judged by the openssl command line (chain, CRL, EKU, file modes).
add_test(NAME integration.pki_cli
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/pki_cli.sh $<TARGET_FILE:rackboot-pki>)
set_tests_properties(integration.pki_cli PROPERTIES TIMEOUT 120)

# Mutual TLS through nng 1.5.2's mbedTLS on loopback with pki's certificates
# and CRL, and the identity handshake over the same REQ/REP connection.
rackboot_unit_test(test_pki_nng_tls LIBS rb_pki nng::nng TIMEOUT 60)
