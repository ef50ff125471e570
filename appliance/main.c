/* hvgated: placeholder entry until the daemon lands (see appliance/). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "hvgated: not built yet\n");
	return 2;
}
