/* Signal handlers of every shape C code writes: K&R `void h()` (no parameters:
 * wasm would trap on an indirect call with the signal number), `void h(int)`,
 * and SA_SIGINFO's three parameters. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile int hits;
void knr() { hits++; }                 /* K&R: no parameters */
static void with_int(int s) { hits += s == SIGALRM ? 10 : 1000; }
static void info(int s, siginfo_t *i, void *c) { (void)c; hits += (s == SIGUSR1 && i->si_signo == SIGUSR1) ? 100 : 1000; }
int main(void) {
    signal(SIGALRM, (void (*)(int))knr);
    alarm(1); pause();
    printf("K&R handler ran: %d\n", hits);
    signal(SIGALRM, with_int);
    alarm(1); pause();
    printf("int handler ran: %d\n", hits);
    struct sigaction sa = {0}; sa.sa_sigaction = info; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("siginfo handler ran: %d\n", hits);
    return 0;
}
