/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — the metrics on a local HTTP endpoint and in a file.
 *
 * One thread does both: a poll loop over the listening socket, up to
 * OBS_HTTP_CONNS connections and the stop signal, that also rewrites the
 * file on its interval.  The endpoint speaks just enough HTTP/1.x for a
 * scraper: GET or HEAD of /metrics, one response, then the connection is
 * closed.  Every byte a client sends is hostile, and so is a client that
 * sends or reads slowly: every socket is non-blocking, and a connection
 * has OBS_HTTP_DEADLINE_MS from its accept to read the request (request
 * line and headers, at most OBS_HTTP_MAX bytes) and take the whole answer,
 * or it is reset.  When every slot is taken, a new connection evicts the
 * oldest one still sending its request, so silent clients cannot keep a
 * scraper out.  The request line is parsed against an allow-list before
 * anything else happens, and the headers are not interpreted at all.
 * Nothing here blocks: stopping takes at most one poll.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#define OBS_HTTP_CONNS	     16
/* What a connection may send after its request before it is reset. */
#define OBS_HTTP_DRAIN (64 * 1024)

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

int obs_write_file(const char *path, const struct obs_text *t,
		   struct stat *written, char *err, size_t errlen)
{
	char tmp[4096];
	size_t done = 0;
	struct stat st;
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		ERR("%s: path too long", path);
		return -ENAMETOOLONG;
	}
	/* A leftover (a crash between create and rename) goes first;
	 * O_EXCL|O_NOFOLLOW then refuse anything that appears in its
	 * place. */
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
	if (!r && fstat(fd, &st)) {
		r = -errno;
		ERR("cannot stat %s: %s", tmp, strerror(errno));
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
	else if (written)
		*written = st;
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

/* A connection, from accept to close. */
struct conn {
	int fd; /* -1: a free slot */
	enum { READING, WRITING, DRAINING } state;
	uint64_t deadline, since; /* obs_now_ns() */
	char req[OBS_HTTP_MAX];
	size_t len, drained;
	struct obs_text out; /* the answer */
	size_t sent;
};

struct obs_server {
	struct obs_opts o;
	char *file;
	struct stat written; /* what we last put at file (st_ino 0: none) */
	int lfd, stop_efd;
	char url[96];
	pthread_t thread;
	bool started;
	bool file_failing, http_failing;
	struct conn conns[OBS_HTTP_CONNS];
};

static void warn(struct obs_server *s, bool *failing, const char *msg)
{
	if (!*failing && s->o.warn)
		s->o.warn(s->o.arg, msg);
	*failing = true;
}

static int write_file(struct obs_server *s, char *err, size_t errlen)
{
	struct obs_text t = { 0 };
	int r;

	s->o.collect(&t, s->o.arg);
	if (t.failed) {
		snprintf(err, errlen, "metrics: out of memory");
		r = -ENOMEM;
	} else {
		r = obs_write_file(s->file, &t, &s->written, err, errlen);
	}
	obs_text_free(&t);
	return r;
}

static void rewrite_file(struct obs_server *s)
{
	char err[512];

	if (write_file(s, err, sizeof(err))) {
		warn(s, &s->file_failing, err);
	} else {
		if (s->file_failing && s->o.warn)
			s->o.warn(s->o.arg, "metrics: the file is written "
					    "again");
		s->file_failing = false;
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
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Bad Request";
	}
}

/* The whole answer to status into c->out: headers, then the body (none
 * for HEAD). */
static void answer(struct obs_server *s, struct conn *c, unsigned status,
		   bool head)
{
	struct obs_text body = { 0 };

	if (status == 200) {
		s->o.collect(&body, s->o.arg);
		if (body.failed) {
			obs_text_free(&body);
			status = 503;
		}
	}
	if (status != 200)
		obs_printf(&body, "%u %s\n", status, reason(status));
	obs_printf(&c->out,
		   "HTTP/1.1 %u %s\r\n"
		   "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		   "Content-Length: %zu\r\n"
		   "%s"
		   "Connection: close\r\n\r\n",
		   status, reason(status), body.failed ? 0 : body.len,
		   status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && !body.failed)
		obs_printf(&c->out, "%.*s", (int)body.len, body.p);
	obs_text_free(&body);
	c->state = WRITING;
	c->sent = 0;
}

static void conn_close(struct conn *c, bool reset)
{
	if (reset) {
		/* An RST, not a FIN: nothing of ours lingers for a client
		 * that does not read. */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(c->fd);
	c->fd = -1;
	obs_text_free(&c->out);
}

/* What the client sent: more of the request, or the rest of a request we
 * already answered (read and dropped, so that closing sends a FIN, not an
 * RST that could cut the answer short; one read per wake-up, and a client
 * that goes on sending is reset). */
static void conn_read(struct obs_server *s, struct conn *c)
{
	char sink[4096];
	ssize_t n;
	unsigned status;
	bool head;

	if (c->state != READING) {
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0 && (c->drained += (size_t)n) > OBS_HTTP_DRAIN)
			conn_close(c, true);
		else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c, false);
		return;
	}
	n = recv(c->fd, c->req + c->len, sizeof(c->req) - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n < 0);
		return;
	}
	c->len += (size_t)n;
	if (memmem(c->req, c->len, "\r\n\r\n", 4) ||
	    memmem(c->req, c->len, "\n\n", 2)) {
		status = obs_http_parse(c->req, c->len, &head);
		answer(s, c, status, head);
	} else if (c->len == sizeof(c->req)) {
		answer(s, c, 431, false);
	}
}

static void conn_write(struct conn *c)
{
	ssize_t n;

	if (c->out.failed) {
		conn_close(c, true);
		return;
	}
	n = send(c->fd, c->out.p + c->sent, c->out.len - c->sent,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c, true);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent == c->out.len) {
		/* All of it is out: FIN, then wait for the client's. */
		shutdown(c->fd, SHUT_WR);
		c->state = DRAINING;
	}
}

/* A new connection, in a free slot, or in place of the oldest one still
 * sending its request, else of the oldest one answered (what a client that
 * does not read leaves behind). */
static void conn_accept(struct obs_server *s)
{
	struct conn *c = NULL, *oldest = NULL;
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED) {
			char msg[128];

			snprintf(msg, sizeof(msg), "metrics: accept: %s",
				 strerror(errno));
			warn(s, &s->http_failing, msg);
			/* EMFILE and the like: do not spin. */
			poll(NULL, 0, 100);
		}
		return;
	}
	s->http_failing = false;
	for (unsigned i = 0; i < OBS_HTTP_CONNS && !c; i++) {
		struct conn *k = &s->conns[i];

		if (k->fd < 0)
			c = k;
		else if (!oldest ||
			 (k->state == READING) > (oldest->state == READING) ||
			 ((k->state == READING) == (oldest->state == READING) &&
			  k->since < oldest->since))
			oldest = k;
	}
	if (!c) {
		c = oldest;
		conn_close(c, true);
	}
	*c = (struct conn){ .fd = fd, .state = READING };
	c->since = obs_now_ns();
	c->deadline = c->since + OBS_HTTP_DEADLINE_MS * 1000000ull;
}

static void *server_main(void *arg)
{
	struct obs_server *s = arg;
	struct pollfd p[2 + OBS_HTTP_CONNS];
	struct conn *polled[OBS_HTTP_CONNS];
	uint64_t next = 0;

	if (s->file)
		next = obs_now_ns() + s->o.file_interval * 1000000000ull;
	for (;;) {
		uint64_t now = obs_now_ns(), wake = UINT64_MAX;
		unsigned n = 0, np;
		int r;

		if (s->file) {
			if (now >= next) {
				rewrite_file(s);
				now = obs_now_ns();
				next = now + s->o.file_interval * 1000000000ull;
			}
			wake = next;
		}
		p[n++] = (struct pollfd){ .fd = s->stop_efd, .events = POLLIN };
		if (s->lfd >= 0)
			p[n++] = (struct pollfd){ .fd = s->lfd,
						  .events = POLLIN };
		np = n;
		for (unsigned i = 0; i < OBS_HTTP_CONNS; i++) {
			struct conn *c = &s->conns[i];

			if (c->fd < 0)
				continue;
			if (now >= c->deadline) {
				conn_close(c, true);
				continue;
			}
			if (c->deadline < wake)
				wake = c->deadline;
			polled[n - np] = c;
			p[n++] = (struct pollfd){
				.fd = c->fd,
				.events =
					c->state == WRITING ? POLLOUT : POLLIN,
			};
		}
		r = poll(p, n,
			 wake == UINT64_MAX
				 ? -1
				 : (int)((wake - now) / 1000000 + 1));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (p[0].revents)
			break;
		for (unsigned i = np; i < n; i++) {
			struct conn *c = polled[i - np];

			if (!p[i].revents || c->fd < 0)
				continue;
			if (c->state == WRITING)
				conn_write(c);
			else
				conn_read(s, c);
			/* Answered at once: try to send it now. */
			if (c->fd >= 0 && c->state == WRITING)
				conn_write(c);
		}
		if (np == 2 && p[1].revents & POLLIN)
			conn_accept(s);
	}
	for (unsigned i = 0; i < OBS_HTTP_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(&s->conns[i], true);
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
	for (unsigned i = 0; i < OBS_HTTP_CONNS; i++)
		s->conns[i].fd = -1;
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
		char cwd[PATH_MAX];

		/* Absolute: a daemon changes its directory once detached. */
		if (o->file[0] == '/')
			s->file = strdup(o->file);
		else if (getcwd(cwd, sizeof(cwd)) &&
			 asprintf(&s->file, "%s/%s", cwd, o->file) < 0)
			s->file = NULL;
		if (!s->file) {
			r = -ENOMEM;
			ERR("--metrics-file %s: cannot make it absolute",
			    o->file);
			goto fail;
		}
		/* Once here: a path that cannot be written fails the start. */
		r = write_file(s, err, errlen);
		if (r)
			goto fail;
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
	obs_stop(s, true);
	return r;
}

const char *obs_url(const struct obs_server *s)
{
	return s && s->url[0] ? s->url : NULL;
}

const char *obs_file(const struct obs_server *s)
{
	return s ? s->file : NULL;
}

void obs_stop(struct obs_server *s, bool remove_file)
{
	struct stat st;

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
	/* Only what we wrote: not a file another writer put there since. */
	if (remove_file && s->file && s->written.st_ino &&
	    !lstat(s->file, &st) && st.st_dev == s->written.st_dev &&
	    st.st_ino == s->written.st_ino)
		unlink(s->file);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_efd >= 0)
		close(s->stop_efd);
	free(s->file);
	free(s);
}
