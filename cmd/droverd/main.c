/* droverd -- the worker daemon (the worker comes with the next step). */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "droverd: the worker comes with the next step\n");
    return 1;
}
