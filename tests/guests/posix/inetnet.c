/* inet_network, inet_makeaddr, inet_lnaof and inet_netof, compared with glibc. */
#include <arpa/inet.h>
#include <stdio.h>
int main(void) {
  const char *in[] = {"10", "10.1", "10.1.2.3", "0x0a.1", "012.1", "08", "1.2.3.4.5", "256", "10.", "", "1 ", "0xff.0377", NULL};
  for (int i = 0; in[i]; i++) printf("inet_network(\"%s\") = %#x\n", in[i], (unsigned)inet_network(in[i]));
  struct in_addr a;
  for (unsigned net = 1; net < 70000; net *= 40) { a = inet_makeaddr(net, 5); printf("makeaddr %u: %s lnaof %u netof %u\n", net, inet_ntoa(a), (unsigned)inet_lnaof(a), (unsigned)inet_netof(a)); }
  return 0;
}
