/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c — cmkfs-kmsd's HTTP front end (libmicrohttpd): bounded intake of
 * requests, SigV4 verification of every one, the AWS JSON 1.1 framing
 * (POST /, X-Amz-Target: TrentService.<Action>), dispatch to actions.c, and
 * the access log.
 *
 * Limits: request headers are bounded by the connection memory limit (MHD
 * answers 431 beyond it), bodies by MAX_BODY, connections by
 * KMSD_MAX_CONNECTIONS and per address by cfg->per_address, JSON nesting by
 * MAX_DEPTH.  Bodies are held in secure memory: Encrypt requests carry
 * plaintext, which is taken out of the body into secure memory before
 * json-c parses the rest (take.c).
 *
 * Time: MHD's connection timeout counts only silence, so a client sending
 * a byte now and then could hold a connection forever.  A watcher thread
 * cuts (shutdown(2)) every connection whose request is not in whole within
 * cfg->request_timeout seconds of the connection, or of the answer before
 * it on a kept-alive one; once a request is in, answering it takes what it
 * takes.  A silent connection goes after IDLE_TIMEOUT, or half the
 * deadline when that is shorter.
 * The descriptor stays MHD's: it is only shut down, under the lock that
 * MHD's close notification (which comes before MHD closes it) also takes.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "crypto.h"
#include "kmsd.h"
#include "obs.h"
#include "sigv4.h"

#define MAX_BODY      ((size_t)256 * 1024)
#define MAX_HEADERS   64
#define IDLE_TIMEOUT  10 /* seconds of silence */
#define MAX_DEPTH     32
#define CONN_MEMORY   ((size_t)64 * 1024)
#define TARGET_PREFIX "TrentService."

/* A connection the watcher times (socket context of MHD's). */
struct watched {
	int fd;
	int64_t since; /* ms: its request may have begun */
	bool whole;    /* its request is in: being answered */
	bool cut;
	char peer[64];
	struct watched *prev, *next;
};

struct server {
	struct state *st;
	const struct server_config *cfg;
	FILE *log;
	pthread_mutex_t log_lock;
	/* The watcher (see above): watch_lock guards the list and stop. */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	struct watched *watched;
	bool watch_stop;
	pthread_t watcher;
};

/* Per-request intake state. */
struct intake {
	uint8_t *body; /* secure memory */
	size_t len;
	bool too_big;
	uint64_t t0; /* obs_now_ns() when its headers were in */
};

/* What the access log records of a request. */
struct outcome {
	char request_id[37];
	const char *principal;
	const char *action;
	const char *key_arn;
	const char *error; /* NULL: OK */
	unsigned status;
	uint64_t t0; /* the intake's */
};

/* One line of the access log, after its time. */
static void log_line(struct server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_line(struct server *s, const char *fmt, ...)
{
	char when[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&s->log_lock);
	fprintf(s->log, "%s ", when);
	va_start(ap, fmt);
	vfprintf(s->log, fmt, ap);
	va_end(ap);
	fputc('\n', s->log);
	fflush(s->log);
	pthread_mutex_unlock(&s->log_lock);
}

static void access_log(struct server *s, const struct outcome *o)
{
	log_line(s,
		 "request_id=%s principal=%s action=%s key=%s outcome=%s "
		 "status=%u",
		 o->request_id, o->principal ? o->principal : "-",
		 o->action ? o->action : "-",
		 o->key_arn && *o->key_arn ? o->key_arn : "-",
		 o->error ? o->error : "OK", o->status);
	kmsd_metrics_count(o->action ? o->action : "-",
			   o->error ? o->error : "OK", obs_now_ns() - o->t0);
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
			     struct MHD_Response *r, const char *request_id)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
				"application/x-amz-json-1.1");
	MHD_add_response_header(r, "x-amzn-RequestId", request_id);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An AWS error body: {"__type": "...", "message": "..."}. */
static enum MHD_Result send_error(struct server *s, struct MHD_Connection *conn,
				  struct outcome *o, unsigned status,
				  const char *type, const char *message)
{
	json_object *e = json_object_new_object();
	struct MHD_Response *r;
	char *text;

	json_object_object_add(e, "__type", json_object_new_string(type));
	json_object_object_add(e, "message", json_object_new_string(message));
	text = strdup(json_object_to_json_string_ext(
		e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(e);
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text,
					    MHD_RESPMEM_MUST_FREE);
	if (!r)
		free(text);
	o->error = type;
	o->status = status;
	access_log(s, o);
	return queue(conn, status, r, o->request_id);
}

static void free_secret(void *p)
{
	secmem_free(p);
}

/*
 * A success body.  When the action returned key material, its base64 is
 * spliced in as the first member, straight from secure memory into a
 * secure-memory response buffer, so it never lands in json-c's heap.
 */
static enum MHD_Result send_ok(struct server *s, struct MHD_Connection *conn,
			       struct outcome *o, json_object *resp,
			       const char *secret_b64)
{
	const char *rest = json_object_to_json_string_ext(
		resp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *r;
	size_t n;
	char *buf;

	o->status = 200;
	access_log(s, o);
	if (!secret_b64) {
		char *copy = strdup(rest);

		if (!copy)
			return MHD_NO;
		r = MHD_create_response_from_buffer(strlen(copy), copy,
						    MHD_RESPMEM_MUST_FREE);
		return queue(conn, 200, r, o->request_id);
	}
	/* rest is "{...}": emit {"Plaintext":"<b64>", ...} */
	n = strlen("{\"Plaintext\":\"\"") + strlen(secret_b64) + strlen(rest) +
	    2;
	buf = secmem_alloc(n);
	if (!buf)
		return MHD_NO;
	snprintf(buf, n, "{\"Plaintext\":\"%s\"%s%s", secret_b64,
		 strcmp(rest, "{}") ? "," : "",
		 strcmp(rest, "{}") ? rest + 1 : "}");
	r = MHD_create_response_from_buffer_with_free_callback(strlen(buf), buf,
							       free_secret);
	if (!r)
		secmem_free(buf);
	return queue(conn, 200, r, o->request_id);
}

struct header_list {
	struct sigv4_header h[MAX_HEADERS];
	size_t n;
	bool overflow;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
				      const char *key, const char *value)
{
	struct header_list *l = cls;

	(void)kind;
	if (l->n == MAX_HEADERS) {
		l->overflow = true;
		return MHD_NO;
	}
	l->h[l->n].name = key;
	l->h[l->n].value = value ? value : "";
	l->n++;
	return MHD_YES;
}

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	(void)kind, (void)key, (void)value;
	++*(int *)cls;
	return MHD_YES;
}

struct lookup_ctx {
	struct server *s;
	struct principal p;
	bool found;
};

static bool lookup(void *arg, const char *access_key_id,
		   struct sigv4_credential *out)
{
	struct lookup_ctx *l = arg;

	state_lock(l->s->st);
	l->found = state_find_principal(l->s->st, access_key_id, &l->p);
	state_unlock(l->s->st);
	if (!l->found)
		return false;
	out->secret = l->p.secret;
	out->session_token = l->p.session_token[0] ? l->p.session_token : NULL;
	out->expires = l->p.expires;
	return true;
}

static bool serves(const struct server_config *cfg, const char *region)
{
	for (size_t i = 0; i < cfg->n_regions; i++)
		if (!strcmp(cfg->regions[i], region))
			return true;
	return false;
}

static enum MHD_Result process(struct server *s, struct MHD_Connection *conn,
			       const char *url, const char *method,
			       struct intake *in)
{
	static const char *const required[] = { "x-amz-target", "content-type",
						NULL };
	struct outcome o = { 0 };
	struct header_list hl = { 0 };
	struct lookup_ctx lc = { .s = s };
	struct sigv4_verify_params vp = { 0 };
	struct sigv4_request rq = { 0 };
	struct sigv4_result res;
	struct call call = { 0 };
	json_object *req = NULL, *resp = NULL;
	const char *target, *ctype;
	char *secret_b64 = NULL, *taken = NULL;
	enum MHD_Result ret;
	json_tokener *tok;
	size_t taken_len = 0;
	int nargs = 0, r;

	if (crypto_uuid(o.request_id))
		return MHD_NO;
	o.t0 = in->t0;
	if (strcmp(method, "POST"))
		return send_error(s, conn, &o, 405, "UnknownOperationException",
				  "KMS accepts only POST /");
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_arg,
				  &nargs);
	if (strcmp(url, "/") || nargs)
		return send_error(s, conn, &o, 404, "UnknownOperationException",
				  "KMS accepts only POST /");
	if (in->too_big)
		return send_error(s, conn, &o, 413, "ValidationException",
				  "The request body is larger than 262144 "
				  "bytes");
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hl);
	if (hl.overflow)
		return send_error(s, conn, &o, 400, "ValidationException",
				  "Too many request headers");

	rq.method = method;
	rq.target = url;
	rq.headers = hl.h;
	rq.n_headers = hl.n;
	rq.body = in->body ? in->body : (const uint8_t *)"";
	rq.body_len = in->len;
	vp.service = "kms";
	vp.now = (int64_t)time(NULL);
	vp.max_skew = s->cfg->max_skew;
	vp.normalize_path = true;
	vp.required_signed = required;
	vp.lookup = lookup;
	vp.lookup_arg = &lc;
	if (sigv4_verify(&rq, &vp, &res)) {
		unsigned status = res.status == SIGV4_INCOMPLETE ? 400 : 403;

		if (res.status == SIGV4_OK) { /* out of memory */
			ret = MHD_NO;
			goto out;
		}
		ret = send_error(s, conn, &o, status,
				 sigv4_status_name(res.status), res.message);
		goto out;
	}
	o.principal = lc.p.arn;
	if (!serves(s->cfg, res.region)) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "This service does not serve region %s", res.region);
		ret = send_error(s, conn, &o, 400, "NotFoundException", msg);
		goto out;
	}
	target = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					     "X-Amz-Target");
	ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					    "Content-Type");
	if (!ctype || strcmp(ctype, "application/x-amz-json-1.1")) {
		ret = send_error(s, conn, &o, 400, "UnknownOperationException",
				 "Content-Type must be "
				 "application/x-amz-json-1.1");
		goto out;
	}
	if (!target || strncmp(target, TARGET_PREFIX, strlen(TARGET_PREFIX))) {
		ret = send_error(s, conn, &o, 400, "UnknownOperationException",
				 "X-Amz-Target must be TrentService.<Action>");
		goto out;
	}
	/* Logged: the name as known here, never the header's own bytes
	 * (which could forge fields of the access log). */
	o.action = kmsd_action_known(target + strlen(TARGET_PREFIX));
	if (!o.action)
		o.action = "(unknown)";

	/* Encrypt's Plaintext never reaches json-c's heap: it is taken out
	 * of the body (secure memory) into secure memory first. */
	r = in->body ? kmsd_json_take_string((char *)in->body, in->len,
					     "Plaintext", &taken, &taken_len)
		     : -EINVAL;
	if (r == -ENOMEM) {
		ret = send_error(s, conn, &o, 500, "KMSInternalException",
				 "out of memory");
		goto out;
	}
	if (r == 1) {
		call.taken_name = "Plaintext";
		call.taken = taken;
		call.taken_len = taken_len;
	}
	tok = r < 0 ? NULL : json_tokener_new_ex(MAX_DEPTH);
	if (tok) {
		/* Strings are UTF-8 or the request is refused: what is stored
		 * (descriptions, tags, grant names) is handed back to SDK
		 * clients, which fail on anything else.  Strict JSON, as AWS
		 * takes and as kmsd_json_take_string reads it. */
		json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8 |
						    JSON_TOKENER_STRICT);
		req = json_tokener_parse_ex(tok, (const char *)rq.body,
					    (int)in->len);
		if (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != in->len) {
			json_object_put(req);
			req = NULL;
		}
		json_tokener_free(tok);
	}
	if (req && !kmsd_utf8_valid(rq.body, in->len)) {
		json_object_put(req);
		req = NULL;
	}
	if (!req || !json_object_is_type(req, json_type_object)) {
		ret = send_error(s, conn, &o, 400, "SerializationException",
				 "The request body is not a JSON object of "
				 "UTF-8 strings");
		goto out;
	}
	if (kmsd_json_has_nul((const char *)rq.body, in->len)) {
		ret = send_error(s, conn, &o, 400, "ValidationException",
				 "Strings must not contain the NUL character "
				 "(\\u0000)");
		goto out;
	}

	call.st = s->st;
	call.caller = &lc.p;
	call.region = res.region;
	call.request_id = o.request_id;
	call.now = vp.now;
	state_lock(s->st);
	if (kmsd_action_run(&call, target + strlen(TARGET_PREFIX), req, &resp,
			    &secret_b64)) {
		state_unlock(s->st);
		o.key_arn = call.key_arn;
		ret = send_error(s, conn, &o, (unsigned)call.http_status,
				 call.error_type, call.message);
		goto out;
	}
	/* The answer may share objects with the store (json-c's reference
	 * counts are not atomic): it is written and let go under the lock. */
	o.key_arn = call.key_arn;
	ret = send_ok(s, conn, &o, resp, secret_b64);
	json_object_put(resp);
	resp = NULL;
	state_unlock(s->st);
out:
	secmem_free(taken);
	secmem_free(secret_b64);
	json_object_put(resp);
	json_object_put(req);
	secmem_wipe(&lc.p, sizeof(lc.p));
	return ret;
}

/* ---- the watcher --------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void notify_connection(void *cls, struct MHD_Connection *conn,
			      void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct server *s = cls;
	struct watched *w = *socket_context;
	const union MHD_ConnectionInfo *fd, *addr;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		fd = MHD_get_connection_info(conn,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		w = calloc(1, sizeof(*w));
		if (!w || !fd)
			return free(w); /* not watched: MHD's timeout stays */
		w->fd = fd->connect_fd;
		w->since = mono_ms();
		snprintf(w->peer, sizeof(w->peer), "-");
		if (addr && addr->client_addr)
			getnameinfo(addr->client_addr,
				    addr->client_addr->sa_family == AF_INET6
					    ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in),
				    w->peer, sizeof(w->peer), NULL, 0,
				    NI_NUMERICHOST);
		pthread_mutex_lock(&s->watch_lock);
		w->next = s->watched;
		if (w->next)
			w->next->prev = w;
		s->watched = w;
		pthread_mutex_unlock(&s->watch_lock);
		*socket_context = w;
		return;
	}
	if (!w)
		return;
	pthread_mutex_lock(&s->watch_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		s->watched = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&s->watch_lock);
	*socket_context = NULL;
	free(w);
}

/* A request is in whole (it is being answered: the deadline no longer
 * applies, whatever the answer takes), or answered (the next one on the
 * connection starts its clock). */
static void request_is(struct server *s, struct MHD_Connection *conn,
		       bool whole)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct watched *w = ci ? ci->socket_context : NULL;

	if (!w)
		return;
	pthread_mutex_lock(&s->watch_lock);
	w->whole = whole;
	if (!whole)
		w->since = mono_ms();
	pthread_mutex_unlock(&s->watch_lock);
}

static void log_cut(struct server *s, const char *peer)
{
	log_line(s, "connection from %s cut: no whole request within %u s",
		 peer, s->cfg->request_timeout);
}

static void *watcher_main(void *arg)
{
	struct server *s = arg;
	int64_t limit = (int64_t)s->cfg->request_timeout * 1000;

	pthread_mutex_lock(&s->watch_lock);
	while (!s->watch_stop) {
		struct timespec until;
		int64_t now = mono_ms();

		for (struct watched *w = s->watched; w; w = w->next) {
			if (w->cut || w->whole || now - w->since < limit)
				continue;
			/* MHD sees the end of the stream and closes it. */
			shutdown(w->fd, SHUT_RDWR);
			w->cut = true;
			log_cut(s, w->peer);
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->watch_cond, &s->watch_lock, &until);
	}
	pthread_mutex_unlock(&s->watch_lock);
	return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct intake *in = *con_cls;

	(void)version;
	if (!in) {
		in = calloc(1, sizeof(*in));
		*con_cls = in;
		if (in)
			in->t0 = obs_now_ns();
		return in ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (!in->too_big && in->len + n <= MAX_BODY) {
			uint8_t *b = secmem_realloc(in->body, in->len + n + 1);

			if (!b)
				return MHD_NO;
			in->body = b;
			memcpy(in->body + in->len, upload_data, n);
			in->len += n;
			in->body[in->len] = 0;
		} else {
			in->too_big = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	request_is(cls, conn, true);
	return process(cls, conn, url, method, in);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode code)
{
	struct intake *in = *con_cls;

	(void)code;
	request_is(cls, conn, false);
	if (in) {
		secmem_free(in->body);
		free(in);
		*con_cls = NULL;
	}
}

int kmsd_server_run(struct state *st, const struct server_config *cfg,
		    char *err, size_t errlen)
{
	struct server s = { .st = st, .cfg = cfg, .log = stderr };
	pthread_condattr_t ca;
	unsigned idle;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	socklen_t sslen;
	sigset_t set;
	char host[128];
	bool v6;
	int sig, r = 0;

	if (obs_parse_listen(cfg->listen, NULL, &ss, &sslen)) {
		snprintf(err, errlen,
			 "--listen %s: expected ADDRESS:PORT with a numeric "
			 "address, e.g. 127.0.0.1:7090",
			 cfg->listen);
		return -EINVAL;
	}
	if (cfg->log_path) {
		s.log = fopen(cfg->log_path, "ae");
		if (!s.log) {
			r = -errno;
			snprintf(err, errlen, "cannot open log %s: %s",
				 cfg->log_path, strerror(errno));
			return r;
		}
	}
	v6 = ss.ss_family == AF_INET6;
	pthread_mutex_init(&s.log_lock, NULL);
	pthread_mutex_init(&s.watch_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s.watch_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Block the signals before MHD starts its threads, so they inherit
	 * the mask and only sigwait() below sees SIGINT/SIGTERM. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/* A kept-alive connection idle for long leaves its next request
	 * little of the deadline: idle for at most half of it. */
	idle = cfg->request_timeout / 2 < IDLE_TIMEOUT
		       ? (cfg->request_timeout + 1) / 2
		       : IDLE_TIMEOUT;
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)KMSD_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_address,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, idle,
		MHD_OPTION_NOTIFY_COMPLETED, completed, &s,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, &s,
		MHD_OPTION_END);
	if (!d) {
		snprintf(err, errlen,
			 "cannot listen on %s (address in use, or not a local "
			 "address?)",
			 cfg->listen);
		r = -EADDRINUSE;
		goto out;
	}
	r = -pthread_create(&s.watcher, NULL, watcher_main, &s);
	if (r) {
		MHD_stop_daemon(d);
		snprintf(err, errlen, "cannot start a thread: %s",
			 strerror(-r));
		goto out;
	}
	/* The metrics before the announcement: once it says it listens,
	 * everything asked for runs. */
	r = kmsd_metrics_start(cfg, err, errlen);
	if (!r) {
		info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host),
			    NULL, 0, NI_NUMERICHOST);
		printf("cmkfs-kmsd: listening on http://%s%s%s:%u (regions:",
		       v6 ? "[" : "", host, v6 ? "]" : "",
		       info ? info->port : 0);
		for (size_t i = 0; i < cfg->n_regions; i++)
			printf(" %s", cfg->regions[i]);
		printf(")\n");
		if (kmsd_metrics_url())
			printf("cmkfs-kmsd: metrics on %s\n",
			       kmsd_metrics_url());
		fflush(stdout);
	}
	while (!r && sigwait(&set, &sig) == 0 && sig != SIGINT &&
	       sig != SIGTERM)
		;
	kmsd_metrics_stop();
	MHD_stop_daemon(d);
	pthread_mutex_lock(&s.watch_lock);
	s.watch_stop = true;
	pthread_cond_signal(&s.watch_cond);
	pthread_mutex_unlock(&s.watch_lock);
	pthread_join(s.watcher, NULL);
out:
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_cond_destroy(&s.watch_cond);
	pthread_mutex_destroy(&s.watch_lock);
	pthread_mutex_destroy(&s.log_lock);
	if (s.log != stderr)
		fclose(s.log);
	return r;
}
