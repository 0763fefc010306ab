# Tests of rack-agent/render/: golden files (tests/golden/render/) for the
# iPXE script, command line and kickstart; the overlay cpio walked here and
# by GNU cpio; the template check; the request-path parsers under replay.
rackboot_unit_test(test_render_template LIBS rb_model)
rackboot_unit_test(test_render_files LIBS rb_render)
target_compile_definitions(test_render_files PRIVATE
                           RENDER_GOLDEN_DIR="${CMAKE_CURRENT_SOURCE_DIR}/golden/render")
rackboot_unit_test(test_render_overlay LIBS rb_render)
rackboot_fuzz_target(fuzz_render_path LIBS rb_render)
