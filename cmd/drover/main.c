/* drover -- the admin CLI (comes with the worker). */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "drover: the admin CLI comes with the worker\n");
    return 1;
}
