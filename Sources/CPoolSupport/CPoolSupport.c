#define _GNU_SOURCE
#include "CPoolSupport.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

int pool_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1u /* MFD_CLOEXEC: only fd 3 of a worker, by dup2, is inherited */);
}

// Unix sockets: the queue length of a listening socket is only reported by sock_diag
// (UNIX_DIAG_RQLEN: rqueue = waiting connections, wqueue = backlog).
static int unix_listen_queue(int fd, uint32_t *queued, uint32_t *capacity) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -1;
    int netlink = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (netlink < 0) return -1;
    struct {
        struct nlmsghdr header;
        struct unix_diag_req request;
    } message;
    memset(&message, 0, sizeof(message));
    message.header.nlmsg_len = sizeof(message);
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST;
    message.request.sdiag_family = AF_UNIX;
    message.request.udiag_states = -1;
    message.request.udiag_ino = (uint32_t)info.st_ino;
    message.request.udiag_cookie[0] = (uint32_t)-1;
    message.request.udiag_cookie[1] = (uint32_t)-1;
    message.request.udiag_show = UDIAG_SHOW_RQLEN;
    if (send(netlink, &message, sizeof(message), 0) < 0) { close(netlink); return -1; }
    char buffer[8192];
    ssize_t length = recv(netlink, buffer, sizeof(buffer), 0);
    close(netlink);
    if (length <= 0) return -1;
    struct nlmsghdr *header = (struct nlmsghdr *)buffer;
    for (; NLMSG_OK(header, (size_t)length); header = NLMSG_NEXT(header, length)) {
        if (header->nlmsg_type == NLMSG_ERROR || header->nlmsg_type == NLMSG_DONE) return -1;
        if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
        struct unix_diag_msg *reply = NLMSG_DATA(header);
        int attributesLength = (int)(header->nlmsg_len - NLMSG_LENGTH(sizeof(*reply)));
        struct rtattr *attribute = (struct rtattr *)(reply + 1);
        for (; RTA_OK(attribute, attributesLength); attribute = RTA_NEXT(attribute, attributesLength)) {
            if (attribute->rta_type == UNIX_DIAG_RQLEN) {
                struct unix_diag_rqlen *queue = RTA_DATA(attribute);
                *queued = queue->udiag_rqueue;
                *capacity = queue->udiag_wqueue;
                return 0;
            }
        }
    }
    return -1;
}

int pool_listen_queue(int fd, uint32_t *queued, uint32_t *capacity) {
    int domain = 0;
    socklen_t size = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0) return -1;
    if (domain == AF_UNIX) return unix_listen_queue(fd, queued, capacity);
    struct tcp_info info;
    size = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return -1;
    // For a listening socket the kernel reports the accept queue in these two fields.
    *queued = info.tcpi_unacked;
    *capacity = info.tcpi_sacked;
    return 0;
}

int pool_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

int pool_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int pool_parent_death_signal(int sig) {
    if (prctl(PR_SET_PDEATHSIG, sig) != 0) return -1;
    return (int)getppid();
}

int pool_name_thread(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

int pool_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int pool_bind_thread_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) { errno = EINVAL; return -1; }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
