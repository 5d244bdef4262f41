// SPDX-License-Identifier: Apache-2.0
// hold-port: a black-holed signer for bench/run (#12). Listens on 127.0.0.1:PORT and never accepts:
// the kernel completes each TCP handshake into the backlog, and the client then waits for an SSH
// banner that never comes, as with a hung host or a firewall that swallows packets after SYN-ACK.
// Runs until killed.
//
//   hold-port PORT
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hold-port PORT\n");
    return 64;
  }
  int port = std::atoi(argv[1]);
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "hold-port: bad port '%s'\n", argv[1]);
    return 64;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    std::perror("hold-port");
    return 71;
  }
  for (;;) ::pause();
}
