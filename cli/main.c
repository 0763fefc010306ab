/* rackboot: the operator's command line (cli/README.md). */
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "transport.h"

int main(int argc, char **argv)
{
    cli c = {
        .out = stdout,
        .err = stderr,
        .tty = isatty(STDOUT_FILENO) == 1,
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
