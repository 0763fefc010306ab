/* rackboot: the operator's command line (README.md, "The rackboot CLI"). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "transport.h"

/* A terminal `watch` may redraw in place: not TERM=dumb (Emacs' shell,
 * some CI logs), which does not understand cursor movement. */
static bool can_redraw(int fd)
{
    const char *term = getenv("TERM");
    return isatty(fd) == 1 && !(term && strcmp(term, "dumb") == 0);
}

int main(int argc, char **argv)
{
    cli c = {
        .out = stdout,
        .err = stderr,
        .tty = can_redraw(STDOUT_FILENO),
        .err_tty = isatty(STDERR_FILENO) == 1,
        .transport = cli_transport_session,
    };
    int code = cli_main(&c, argc, argv);
    cli_transport_close(&c);
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK) {
        code = CLI_EXIT_FAILED;
    }
    return code;
}
