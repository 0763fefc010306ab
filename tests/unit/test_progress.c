/* rack-agent/install/progress: an installer's `installed` completes the install
 * (withdraws its intent) only once the event is durable in the journal. A
 * full disk or a failed sync answers "not recorded" and changes nothing; the
 * installer's retry then records it, and the journal holds it once. Failures
 * are real: RLIMIT_FSIZE stops the journal's write part-way, and a wrapped
 * fdatasync(2) fails the sync (-Wl,--wrap=fdatasync). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "uplink/journal.h"
#include "install/progress.h"
#include "util.h"

static int fail_fdatasync;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    if (fail_fdatasync > 0) {
        fail_fdatasync--;
        errno = EIO;
        return -1;
    }
    return __real_fdatasync(fd);
}

typedef struct fixture {
    char dir[64];
    char journal_dir[96];
    uv_loop_t loop;
    journal *j;
    progress *p;
    intent_set *set;
    journal_batch *b;
} fixture;

static char completed_seen[64];

static void on_completed(void *userdata, const char *install_id)
{
    snprintf(completed_seen, sizeof(completed_seen), "%s", install_id);
}

static intent_set *one_install(void)
{
    intent_set *set = NULL;
    assert_int_equal(intent_set_new(1, &set), 0);
    model_profile prof = { .name = strdup("p") };
    assert_int_equal(intent_set_add_profile(set, &prof), 0);
    intent in = { 0 };
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    memcpy(in.macs[0], mac, 6);
    in.n_macs = 1;
    in.prefix_len = 64;
    in.install_id = strdup("id-a");
    in.host = strdup("web17");
    in.hostname = strdup("web17");
    in.token = strdup("0123456789abcdef");
    assert_int_equal(intent_set_add(set, &in, "p"), 0);
    return set;
}

static int setup_with(void **state, const journal_config *cfg)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_progress.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->journal_dir, sizeof(f->journal_dir), "%s/journal", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(journal_open(f->journal_dir, cfg, &f->j), 0);
    assert_int_equal(progress_new(&f->loop, f->dir, f->j, &f->p), 0);
    progress_on_completed(f->p, on_completed, NULL);
    assert_int_equal(journal_batch_new(&f->b), 0);
    f->set = one_install();
    completed_seen[0] = '\0';
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

/* Segments of 2 events (1/32 of 64): the third append starts a new segment
 * and first seals the old one. */
static int setup_small_segments(void **state)
{
    const journal_config cfg = { .max_events = 64 };
    return setup_with(state, &cfg);
}

static int teardown(void **state)
{
    fixture *f = *state;
    progress_free(f->p);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    journal_free(f->j);
    journal_batch_free(f->b);
    intent_set_free(f->set);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const intent *install_a(fixture *f)
{
    const intent *in = intent_set_find_install(f->set, "id-a");
    assert_non_null(in);
    return in;
}

/* The newest segment's size: where the next record goes. */
static off_t journal_size(fixture *f)
{
    DIR *d = opendir(f->journal_dir);
    assert_non_null(d);
    struct dirent *de;
    char best[64] = "";
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && streq(de->d_name + len - 4, ".seg") && strcmp(de->d_name, best) > 0) {
            snprintf(best, sizeof(best), "%s", de->d_name);
        }
    }
    closedir(d);
    assert_true(best[0] != '\0');
    char path[192];
    snprintf(path, sizeof(path), "%s/%s", f->journal_dir, best);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void limit_file_size(struct rlimit *saved, rlim_t bytes)
{
    assert_int_equal(getrlimit(RLIMIT_FSIZE, saved), 0);
    struct rlimit small = *saved;
    small.rlim_cur = bytes;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
}

static void unlimit_file_size(const struct rlimit *saved)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, saved), 0);
    signal(SIGXFSZ, SIG_DFL);
}

/* How many durable events of `phase` the uplink would send. */
static int journal_count(fixture *f, Rackboot__V1__Phase phase)
{
    int n = journal_peek(f->j, 1000, f->b);
    assert_true(n >= 0);
    int count = 0;
    Rackboot__V1__Event **ev = journal_batch_events(f->b);
    for (int i = 0; i < n; i++) {
        count += ev[i]->phase == phase;
    }
    return count;
}

/* A full disk: the `installed` event cannot be written, so the install is
 * not completed and its intent stays (the installer's retry must find it). */
static void test_installed_append_fails_not_completed(void **state)
{
    fixture *f = *state;
    assert_int_equal(progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLING, 50,
                                   "packages", NULL, NULL, 0),
                     0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    struct rlimit saved;
    limit_file_size(&saved, (rlim_t)journal_size(f) + 10);
    int r = progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLED, 100, NULL, NULL,
                          NULL, 0);
    unlimit_file_size(&saved);
    assert_true(r < 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_string_equal(completed_seen, "");
    assert_false(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 0);
}

/* What POST /progress answers: 200 for r 0, 503 otherwise. */
typedef struct answer {
    int calls;
    int r;
    char completed_then[64]; /* what was completed when the answer went out */
} answer;

static void on_posted(void *userdata, int r)
{
    answer *a = userdata;
    a->calls++;
    a->r = r;
    snprintf(a->completed_then, sizeof(a->completed_then), "%s", completed_seen);
}

static int post(fixture *f, Rackboot__V1__Phase phase, answer *a)
{
    *a = (answer){ .r = 1 };
    return progress_post_event(f->p, install_a(f), phase, 100, NULL, on_posted, a, NULL);
}

/* The answer waits for the loop's sync; `installed` completes before it. */
static void test_post_answered_once_durable(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLING, &a), 0);
    assert_int_equal(a.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);

    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    /* Not durable yet: nothing sent, nothing completed, nothing answered. */
    assert_int_equal(a.calls, 0);
    assert_string_equal(completed_seen, "");
    assert_false(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_peek(f->j, 10, f->b), 1); /* installing only */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);
    assert_string_equal(a.completed_then, "id-a");
    assert_true(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);
}

/* A full disk: an error at once (the caller answers 503), nothing
 * completed; once there is room the retry is recorded, answered 200 and
 * sent once. */
static void test_post_full_disk_then_retry(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLING, &a), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    struct rlimit saved;
    limit_file_size(&saved, (rlim_t)journal_size(f) + 10);
    int r = post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a);
    unlimit_file_size(&saved);
    assert_int_equal(r, -EFBIG);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 0);
    assert_false(progress_is_completed(f->p, "id-a"));
    assert_string_equal(completed_seen, "");
    assert_int_equal(progress_get_stats(f->p)->events_failed, 1);

    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);
    assert_true(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);
}

/* A failed sync: the answer is 503 and nothing completes; the journal
 * takes the event back, so the retry's event is the only one sent. */
static void test_post_sync_fails_then_retry(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    fail_fdatasync = 1;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    fail_fdatasync = 0;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, -EIO);
    assert_false(progress_is_completed(f->p, "id-a"));
    assert_string_equal(completed_seen, "");
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 0);

    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);
    assert_true(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);

    /* After a restart: still once, still completed. */
    progress_free(f->p);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    f->j = journal_free(f->j);
    assert_int_equal(journal_open(f->journal_dir, NULL, &f->j), 0);
    assert_int_equal(progress_new(&f->loop, f->dir, f->j, &f->p), 0);
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);
    assert_true(progress_is_completed(f->p, "id-a"));
}

/* The installer hung up while waiting: no answer is given, but a durable
 * `installed` still completes (the controller will hear of it). */
static void test_post_detached_still_completes(void **state)
{
    fixture *f = *state;
    answer a = { 0 };
    progress_post *w = NULL;
    assert_int_equal(progress_post_event(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLED,
                                         100, NULL, on_posted, &a, &w),
                     0);
    assert_non_null(w);
    progress_post_detach(w);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 0);
    assert_string_equal(completed_seen, "id-a");
}

/* The sync that loses a post's event is not always the one the post waits
 * for: another event, appended in the same loop iteration, starts a new
 * segment, and sealing the old one (which holds the `installed`) fails. The
 * journal takes the event back, and the loop's own sync then succeeds on
 * what is left. The installer must hear 503 and the install stay open, or
 * it reboots into its disk and the controller never hears `installed`. */
static void test_post_lost_by_another_append_sync(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    assert_int_equal(progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLING, 10,
                                   NULL, NULL, NULL, 0),
                     0);
    fail_fdatasync = 1; /* the seal of the segment holding `installed` */
    int r = progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLING, 20, NULL, NULL,
                          NULL, 0);
    fail_fdatasync = 0;
    assert_int_equal(r, -EIO);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_true(a.r < 0);
    assert_string_equal(completed_seen, "");
    assert_false(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 0);

    /* The installer's retry is recorded, answered 200 and sent once. */
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);
    assert_string_equal(a.completed_then, "id-a");
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);
}

/* The other way round: the post's segment was sealed durable, and only a
 * later segment's records were lost in the same iteration. The `installed`
 * will reach the controller, so it is answered 200 and completes. */
static void test_post_durable_before_a_later_loss(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(post(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED, &a), 0);
    for (uint32_t pct = 10; pct <= 30; pct += 10) { /* the third seals the first segment */
        assert_int_equal(progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLING,
                                       pct, NULL, NULL, NULL, 0),
                         0);
    }
    fail_fdatasync = 1; /* the seal of the second segment */
    int r = progress_emit(f->p, install_a(f), RACKBOOT__V1__PHASE__PHASE_INSTALLING, 40, NULL, NULL,
                          NULL, 0);
    fail_fdatasync = 0;
    assert_int_equal(r, -EIO);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.r, 0);
    assert_string_equal(a.completed_then, "id-a");
    assert_true(progress_is_completed(f->p, "id-a"));
    assert_int_equal(journal_count(f, RACKBOOT__V1__PHASE__PHASE_INSTALLED), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_installed_append_fails_not_completed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_answered_once_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_full_disk_then_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_sync_fails_then_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_detached_still_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_lost_by_another_append_sync, setup_small_segments,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_post_durable_before_a_later_loss, setup_small_segments,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
