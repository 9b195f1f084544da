/* Links against the project's libutil (and libm, which is libc's). */
#include <math.h>

int project_util(void);

int main(void) { return project_util() + (int)sqrt(0.0); }
