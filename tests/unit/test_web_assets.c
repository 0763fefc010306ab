/* controller/web/assets: the files embed.cmake built in are all there,
 * whole, typed, and with ETags; the page names the script and style sheet
 * the server has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "web/assets.h"

static void test_table(void **state)
{
    assert_true(web_assets_count >= 3);
    for (size_t i = 0; i < web_assets_count; i++) {
        const web_asset *a = &web_assets[i];
        assert_ptr_equal(web_asset_find(a->name), a);
        assert_true(a->len > 0);
        /* Whole, with the NUL embed.cmake appends after it. */
        assert_int_equal(a->data[a->len], 0);
        assert_int_equal(strlen((const char *)a->data), a->len);
        assert_int_equal(strlen(a->etag), 18);
        assert_int_equal(a->etag[0], '"');
        assert_int_equal(a->etag[17], '"');
        assert_non_null(strchr(a->type, '/'));
    }
    assert_null(web_asset_find("nope.js"));
    assert_null(web_asset_find(""));
}

static void test_page_names_its_files(void **state)
{
    const web_asset *page = web_asset_find("page.html");
    assert_non_null(page);
    assert_string_equal(page->type, "text/html; charset=utf-8");
    const char *html = (const char *)page->data;
    assert_non_null(strstr(html, "src=\"/static/app.js\""));
    assert_non_null(strstr(html, "href=\"/static/app.css\""));
    assert_non_null(web_asset_find("app.js"));
    assert_non_null(web_asset_find("app.css"));
    assert_string_equal(web_asset_find("app.js")->type, "text/javascript; charset=utf-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_page_names_its_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
