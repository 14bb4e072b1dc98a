/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — the metrics on a local HTTP endpoint and in a file.
 *
 * One thread does both: it answers one connection at a time and rewrites
 * the file on its interval.  The endpoint speaks just enough HTTP/1.x for
 * a scraper: GET or HEAD of /metrics, one response, then the connection is
 * closed.  Every byte a client sends is hostile: the request must arrive
 * whole (request line and headers, at most OBS_HTTP_MAX bytes) within
 * OBS_HTTP_DEADLINE_MS of the connection, or the connection is dropped
 * unanswered; the request line is parsed against an allow-list before
 * anything else happens, and the headers are not interpreted at all.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "obs.h"

#define OBS_HTTP_MAX	     8192
#define OBS_HTTP_DEADLINE_MS 2000

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

int obs_parse_listen(const char *spec, const char *default_host,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	const char *colon = strrchr(spec, ':'), *port;
	char host[64];
	size_t hl;

	if (!colon) {
		if (!default_host)
			return -EINVAL;
		snprintf(host, sizeof(host), "%s", default_host);
		port = spec;
	} else {
		hl = (size_t)(colon - spec);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec, hl);
		host[hl] = 0;
		port = colon + 1;
		if (host[0] == '[') {
			if (hl < 3 || host[hl - 1] != ']')
				return -EINVAL;
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = 0;
		}
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) > 65535)
		return -EINVAL;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) || !ai)
		return -EINVAL;
	if (ai->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(ai);
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- the file */

int obs_write_file(const char *path, const struct obs_text *t, char *err,
		   size_t errlen)
{
	char tmp[4096];
	size_t done = 0;
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path,
			     (int)getpid()) >= sizeof(tmp)) {
		ERR("%s: path too long", path);
		return -ENAMETOOLONG;
	}
	/* A leftover of ours from a crash goes first; O_EXCL|O_NOFOLLOW
	 * then refuse anything that appears in its place. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		r = -errno;
		ERR("cannot create %s: %s", tmp, strerror(errno));
		return r;
	}
	fchmod(fd, 0644); /* whatever the umask: node_exporter reads it */
	while (done < t->len) {
		ssize_t n = write(fd, t->p + done, t->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			ERR("cannot write %s: %s", tmp, strerror(-r));
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) && !r) {
		r = -errno;
		ERR("cannot write %s: %s", tmp, strerror(errno));
	}
	if (!r && rename(tmp, path)) {
		r = -errno;
		ERR("cannot rename %s to %s: %s", tmp, path, strerror(errno));
	}
	if (r)
		unlink(tmp);
	return r;
}

/* ---- HTTP */

unsigned obs_http_parse(const char *buf, size_t len, bool *head)
{
	const char *end = memchr(buf, '\n', len), *sp1, *sp2, *target;
	size_t line, tl;

	*head = false;
	if (!end)
		return 400;
	line = (size_t)(end - buf);
	if (line && buf[line - 1] == '\r')
		line--;
	/* METHOD SP TARGET SP HTTP/1.x, printable ASCII only. */
	for (size_t i = 0; i < line; i++)
		if ((unsigned char)buf[i] < 0x20 ||
		    (unsigned char)buf[i] > 0x7e)
			return 400;
	sp1 = memchr(buf, ' ', line);
	if (!sp1)
		return 400;
	target = sp1 + 1;
	sp2 = memchr(target, ' ', line - (size_t)(target - buf));
	if (!sp2 || sp2 == target)
		return 400;
	tl = (size_t)(sp2 - target);
	/* HTTP/D.D: 1.0 and 1.1 are spoken, other versions refused. */
	if ((size_t)(buf + line - (sp2 + 1)) != 8 ||
	    memcmp(sp2 + 1, "HTTP/", 5) || !isdigit((unsigned char)sp2[6]) ||
	    sp2[7] != '.' || !isdigit((unsigned char)sp2[8]))
		return 400;
	if (sp2[6] != '1' || (sp2[8] != '0' && sp2[8] != '1'))
		return 505;
	if (sp1 - buf == 4 && !memcmp(buf, "HEAD", 4))
		*head = true;
	else if (sp1 - buf != 3 || memcmp(buf, "GET", 3))
		return 405;
	/* /metrics, with or without a query (which means nothing here). */
	if (tl < 8 || memcmp(target, "/metrics", 8) ||
	    (tl > 8 && target[8] != '?'))
		return 404;
	return 200;
}

struct obs_server {
	struct obs_opts o;
	char *file;
	int lfd, stop_efd;
	char url[96];
	pthread_t thread;
	bool started, wrote;
	bool file_failing, http_failing;
};

static void warn(struct obs_server *s, bool *failing, const char *msg)
{
	if (!*failing && s->o.warn)
		s->o.warn(s->o.arg, msg);
	*failing = true;
}

static void write_file(struct obs_server *s)
{
	struct obs_text t = { 0 };
	char err[512];

	s->o.collect(&t, s->o.arg);
	if (t.failed) {
		warn(s, &s->file_failing, "metrics: out of memory");
	} else if (obs_write_file(s->file, &t, err, sizeof(err))) {
		warn(s, &s->file_failing, err);
	} else {
		if (s->file_failing && s->o.warn)
			s->o.warn(s->o.arg, "metrics: the file is written "
					    "again");
		s->file_failing = false;
	}
	obs_text_free(&t);
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client went, or stopped reading */
		p += n;
		len -= (size_t)n;
	}
}

static const char *reason(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Bad Request";
	}
}

static void answer(struct obs_server *s, int fd, unsigned status, bool head)
{
	struct obs_text body = { 0 };
	char hdr[256];
	int n;

	if (status == 200) {
		s->o.collect(&body, s->o.arg);
		if (body.failed) {
			obs_text_free(&body);
			status = 503;
		}
	}
	if (status != 200)
		obs_printf(&body, "%u %s\n", status,
			   status == 503 ? "Service Unavailable"
					 : reason(status));
	n = snprintf(
		hdr, sizeof(hdr),
		"HTTP/1.1 %u %s\r\n"
		"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		"Content-Length: %zu\r\n"
		"%s"
		"Connection: close\r\n\r\n",
		status, status == 503 ? "Service Unavailable" : reason(status),
		body.failed ? 0 : body.len,
		status == 405 ? "Allow: GET, HEAD\r\n" : "");
	send_all(fd, hdr, (size_t)n);
	if (!head && !body.failed)
		send_all(fd, body.p, body.len);
	obs_text_free(&body);
}

/* Read the request (up to its blank line) within the deadline; answer
 * it, or drop a client that is too slow. */
static void serve_one(struct obs_server *s, int fd)
{
	char buf[OBS_HTTP_MAX];
	size_t len = 0;
	uint64_t deadline = obs_now_ns() + OBS_HTTP_DEADLINE_MS * 1000000ull;
	unsigned status;
	bool head;

	for (;;) {
		uint64_t now = obs_now_ns();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline)
			return;
		n = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		len += (size_t)n;
		if (memmem(buf, len, "\r\n\r\n", 4) ||
		    memmem(buf, len, "\n\n", 2))
			break;
		if (len == sizeof(buf)) {
			answer(s, fd, 431, false);
			return;
		}
	}
	status = obs_http_parse(buf, len, &head);
	answer(s, fd, status, head);
}

static void *server_main(void *arg)
{
	struct obs_server *s = arg;
	uint64_t next = 0;

	if (s->file)
		next = obs_now_ns() + s->o.file_interval * 1000000000ull;
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->stop_efd, .events = POLLIN },
			{ .fd = s->lfd, .events = POLLIN },
		};
		int timeout = -1, n;

		if (s->file) {
			uint64_t now = obs_now_ns();

			if (now >= next) {
				write_file(s);
				next = now + s->o.file_interval * 1000000000ull;
			}
			timeout = (int)((next - now) / 1000000 + 1);
		}
		n = poll(p, s->lfd >= 0 ? 2 : 1, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && p[0].revents)
			break;
		if (n > 0 && p[1].revents & POLLIN) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				serve_one(s, fd);
				close(fd);
				s->http_failing = false;
			} else if (errno != EAGAIN && errno != EINTR &&
				   errno != ECONNABORTED) {
				char msg[128];

				snprintf(msg, sizeof(msg),
					 "metrics: accept: %s",
					 strerror(errno));
				warn(s, &s->http_failing, msg);
				/* EMFILE and the like: do not spin. */
				poll(NULL, 0, 100);
			}
		}
	}
	return NULL;
}

static int bind_listen(struct obs_server *s, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char host[INET6_ADDRSTRLEN];
	int one = 1, port;

	if (obs_parse_listen(s->o.listen, "127.0.0.1", &ss, &len)) {
		ERR("--metrics-listen %s: expected PORT (on 127.0.0.1), "
		    "ADDRESS:PORT or [ADDRESS6]:PORT with a numeric address",
		    s->o.listen);
		return -EINVAL;
	}
	s->lfd = socket(ss.ss_family,
			SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&ss, len) || listen(s->lfd, 16) ||
	    getsockname(s->lfd, (struct sockaddr *)&ss, &len)) {
		int r = -errno;

		ERR("--metrics-listen %s: %s", s->o.listen, strerror(errno));
		return r;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(s->url, sizeof(s->url), "http://[%s]:%d/metrics", host,
			 port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(s->url, sizeof(s->url), "http://%s:%d/metrics", host,
			 port);
	}
	return 0;
}

int obs_start(struct obs_server **out, const struct obs_opts *o, char *err,
	      size_t errlen)
{
	struct obs_server *s = calloc(1, sizeof(*s));
	int r = 0;

	*out = NULL;
	if (!s) {
		ERR("out of memory");
		return -ENOMEM;
	}
	s->o = *o;
	s->lfd = s->stop_efd = -1;
	if (!s->o.file_interval)
		s->o.file_interval = 10;
	s->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_efd < 0) {
		r = -errno;
		ERR("metrics: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (o->listen) {
		r = bind_listen(s, err, errlen);
		if (r)
			goto fail;
	}
	if (o->file) {
		struct obs_text t = { 0 };

		s->file = strdup(o->file);
		if (!s->file) {
			r = -ENOMEM;
			ERR("out of memory");
			goto fail;
		}
		/* Once here: a path that cannot be written fails the start. */
		o->collect(&t, o->arg);
		r = t.failed ? -ENOMEM
			     : obs_write_file(s->file, &t, err, errlen);
		obs_text_free(&t);
		if (r) {
			if (r == -ENOMEM)
				ERR("out of memory");
			goto fail;
		}
		s->wrote = true;
	}
	r = -pthread_create(&s->thread, NULL, server_main, s);
	if (r) {
		ERR("metrics: cannot start a thread: %s", strerror(-r));
		goto fail;
	}
	s->started = true;
	*out = s;
	return 0;
fail:
	obs_stop(s, s->wrote);
	return r;
}

const char *obs_url(const struct obs_server *s)
{
	return s && s->url[0] ? s->url : NULL;
}

void obs_stop(struct obs_server *s, bool remove_file)
{
	if (!s)
		return;
	if (s->started) {
		uint64_t one = 1;

		/* An eventfd takes a 1 unless its counter is full: never. */
		while (write(s->stop_efd, &one, sizeof(one)) < 0 &&
		       errno == EINTR)
			;
		pthread_join(s->thread, NULL);
	}
	if (remove_file && s->file)
		unlink(s->file);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_efd >= 0)
		close(s->stop_efd);
	free(s->file);
	free(s);
}
