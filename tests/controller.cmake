# Tests of controller/.
rackboot_unit_test(test_install_fsm LIBS rb_install_fsm TIMEOUT 30)
# Includes a crash test (a child killed mid-ingest) and a timed ingest of
# 20,000 events, so it gets more time under the sanitizers. Runs against the
# "sqlite" backend; `test_store BACKEND` (or RACKBOOT_TEST_STORE_BACKEND)
# runs its behaviour tests against another store backend by name.
rackboot_unit_test(test_store LIBS rb_store TIMEOUT 300)
rackboot_unit_test(test_pgarray LIBS rb_store)
# The same behaviour tests on PostgreSQL, plus a database several
# controllers share (concurrent migration, each other's writes, the server
# dropping connections) and a SQLite fleet copied in (store/copy.h), against
# a throwaway server the script starts.
add_test(NAME integration.store_postgresql
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/store_postgresql.sh
                 $<TARGET_FILE:test_store>)
set_tests_properties(integration.store_postgresql PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
# A controller on PostgreSQL outlives the server's restarts (clean and
# crash) under an agent's event load: every event stored once, the long
# poll answered again (tests/integration/controller_pg_restart.sh).
add_test(NAME integration.controller_pg_restart
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_pg_restart.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controller_pg_restart PROPERTIES TIMEOUT 400 SKIP_RETURN_CODE 77)
# A SQLite fleet moved into PostgreSQL: a real controller, the CLI,
# --migrate and --import-store, the same fleet shown after
# (tests/integration/store_import.sh).
add_test(NAME integration.store_import
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/store_import.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.store_import PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)

# A rack agent reduced to its uplink calls (real session, handshake and
# schema), for the controller's integration tests.
add_executable(rb-fake-agent ${CMAKE_CURRENT_SOURCE_DIR}/tools/fake_agent.c)
target_link_libraries(rb-fake-agent PRIVATE rb_client)

# The hub over real mutual TLS on loopback: sync by generation, long poll,
# events once, cross-rack refusal, other-CA and revoked refusal, SIGKILL and
# restart, withdrawals and a boot timeout (tests/integration/controller_hub.sh).
add_test(NAME integration.controller_hub
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_hub.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controller_hub PROPERTIES TIMEOUT 180)

# Two controllers on one PostgreSQL database, all active (issue 17 §1): an
# install through A reaches the agent parked on B (LISTEN/NOTIFY), the
# feeds reconnect after the database drops them, events sent to both are
# stored once, one controller at a time runs the expiry and B takes it
# over when A is killed (tests/integration/controllers_shared.sh).
add_test(NAME integration.controllers_shared
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controllers_shared.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controllers_shared PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)

# GET /metrics on [metrics] listen over IPv6 loopback, scraped with curl
# while the CLI and rb-fake-agent drive installs, events, a long-poll
# fan-out and refusals; the exposition checked with promtool when the
# prometheus package is installed (tests/integration/controller_metrics.sh).
add_test(NAME integration.controller_metrics
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_metrics.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controller_metrics PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                     LABELS integration)

# The web view's sign-in over HTTPS on IPv6 loopback with curl: one-time
# login URLs from `rackboot web login` (operator and viewer), the session
# cookie, reused and wrong URLs refused, cross-site POST refused
# (tests/integration/web_login.sh).
add_test(NAME integration.web_login
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/web_login.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rackboot>)
set_tests_properties(integration.web_login PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77
                     LABELS integration)

# The web view's JSON and live events stream over HTTPS with curl, an
# install reported by rb-fake-agent (tests/integration/web_data.sh).
add_test(NAME integration.web_data
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/web_data.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.web_data PROPERTIES TIMEOUT 90 SKIP_RETURN_CODE 77
                     LABELS integration)

# The web view in headless Chromium (chromium-driver): sign in with the
# one-time URL, an install from the page seen live from dispatched to
# installed, a viewer refused, wrong and reused login URLs refused, each
# page on a screenshot (tests/integration/web_browser.sh and .py).
add_test(NAME integration.web_browser
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/web_browser.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-pki>
                 $<TARGET_FILE:rb-fake-agent> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.web_browser PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                     LABELS integration)

# The daemon's configuration file.
rackboot_unit_test(test_controller_config LIBS rb_controller TIMEOUT 30)
# The web view's login tokens, sessions, cookies (controller/web/session.h).
rackboot_unit_test(test_web_session LIBS rb_web_session)
# The web view's host list query (controller/web/filter.h).
rackboot_unit_test(test_web_filter LIBS rb_web)
# The web view's embedded files (controller/web/embed.cmake).
rackboot_unit_test(test_web_assets LIBS rb_web)
# The pages' install and cancel bodies (controller/web/actions.h).
rackboot_unit_test(test_web_actions LIBS rb_web)
# The install page's answer file: the agent's text, the token redacted
# (controller/web/answer.h).
rackboot_unit_test(test_web_answer LIBS rb_web)

# The controller without TLS listeners: --check-config, start, SIGTERM, and
# bad configurations exit 1 with their message, never on a signal.
add_test(NAME integration.controller_lifecycle
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_lifecycle.sh
                 $<TARGET_FILE:rackboot-controller>)
set_tests_properties(integration.controller_lifecycle PROPERTIES TIMEOUT 120)

# The loop keeps answering while another process holds the SQLite write
# lock on the controller's database: a write waits for it on the store
# queue, malformed requests are answered meanwhile, and the write completes
# once the lock goes (tests/integration/controller_offloop.sh).
add_test(NAME integration.controller_offloop
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_offloop.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controller_offloop PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)

# The CRL reloads at the TLS layer of both daemons without a restart: an
# agent revoked while it syncs is cut within a second and refused by TLS,
# an expired CRL renewed on disk + SIGHUP lets new connections in again, and
# the agent drops a controller its new CRL revokes
# (tests/integration/crl_reload.sh; uses `openssl ca -gencrl -crlsec`).
add_test(NAME integration.crl_reload
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/crl_reload.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-agent>
                 $<TARGET_FILE:rackboot-pki> $<TARGET_FILE:rb-fake-agent>
                 $<TARGET_FILE:rackboot>)
set_tests_properties(integration.crl_reload PROPERTIES TIMEOUT 240)

# Fuzzed: controller.conf (written to a private tmpfs directory).
rackboot_fuzz_target(fuzz_controller_config LIBS rb_controller)


# Several controller URLs (issue 17): a real agent with `urls = DEAD A B`
# skips DEAD, syncs through A, and moves to B (its own store) when A is
# killed; the CLI with several --controller answers through the first
# reachable one and names every URL when none is
# (tests/integration/controller_failover.sh).
add_test(NAME integration.controller_failover
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/controller_failover.sh
                 $<TARGET_FILE:rackboot-controller> $<TARGET_FILE:rackboot-agent>
                 $<TARGET_FILE:rackboot-pki> $<TARGET_FILE:rackboot>)
set_tests_properties(integration.controller_failover PROPERTIES TIMEOUT 300)
