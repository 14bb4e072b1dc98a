/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds.c — the AWS credential chain of creds.h: environment, shared
 * credentials and config files, container credentials, EC2 instance metadata
 * (IMDSv2 only), a cache, and the refresh of temporary credentials before
 * they expire.  Not request signing, region or endpoint resolution (the
 * client's), and no profile features beyond static keys: role assumption,
 * SSO and credential processes are refused by name, never half-supported.
 *
 * Secrets pass only through memory we own in secure memory: the files we
 * read, HTTP response buffers, header lines carrying tokens, and the
 * credentials themselves.  Copies inside libraries are wiped where we can
 * reach them (curl's header list, json-c's strings; see parse_creds_json);
 * curl's own receive buffers are beyond reach.  Messages quote no secret and
 * no response bytes except short fields checked against a small alphabet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "creds.h"
#include "http.h"
#include "crypto.h"
#include "util.h"

/* Hard limits: generous for anything the SDKs or AWS produce, and anything
 * beyond them is refused, never truncated. */
enum {
	MAX_FILE = 1 << 20,	 /* a shared credentials or config file */
	MAX_LINE = 8192,	 /* one line of it (session tokens are long) */
	MAX_TOKEN_FILE = 16384,	 /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
	MAX_RESPONSE = 64 << 10, /* a container or instance metadata answer */
	MAX_IMDS_TOKEN = 1024,	 /* IMDSv2 session tokens are ~56 chars */
	MAX_ROLE = 128,		 /* IAM role names: 64; leave room */
	MAX_URL = 2048,
	MAX_MSG = 2 * PATH_MAX + 512, /* one source's message */
	DEFAULT_TIMEOUT_MS = 1000,
};

static const char CONTAINER_HOST[] = "http://169.254.170.2";
static const char IMDS_V4[] = "http://169.254.169.254";
static const char IMDS_V6[] = "http://[fd00:ec2::254]";
static const char IMDS_TOKEN_PATH[] = "/latest/api/token";
static const char IMDS_ROLE_PATH[] =
	"/latest/meta-data/iam/security-credentials/";
static const char IMDS_TTL_HEADER[] =
	"X-aws-ec2-metadata-token-ttl-seconds: 21600";
static const char IMDS_TOKEN_HEADER[] = "X-aws-ec2-metadata-token: ";
static const char AUTH_HEADER[] = "Authorization: ";

/* Profile settings that select a way of getting credentials cmkfs does not
 * implement.  Using the profile's static keys instead would silently act as
 * another identity than every SDK would, so these are refused by name. */
static const char *const UNSUPPORTED[] = {
	"role_arn",	     "source_profile",		"credential_process",
	"credential_source", "web_identity_token_file", "sso_session",
	"sso_start_url",     "sso_account_id",		"sso_role_name",
	"sso_region",
};

enum source {
	SRC_NONE,
	SRC_ENV,
	SRC_FILES,
	SRC_CONTAINER,
	SRC_IMDS,
};

struct creds_provider {
	pthread_mutex_t lock; /* guards kind and cache */
	char *profile;
	bool profile_explicit; /* from the options or AWS_PROFILE */
	long timeout_ms;
	enum source kind;	 /* the source that answered, once resolved */
	struct kms_creds *cache; /* secure memory; NULL until resolved */
};

/* ---- small helpers ------------------------------------------------------ */

/* An environment variable, or NULL when unset or empty: the SDKs treat an
 * empty variable as unset. */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim blanks at both ends, in place. */
static char *trim(char *s)
{
	char *e;

	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && (is_blank(e[-1]) || e[-1] == '\n'))
		*--e = 0;
	return s;
}

/* Printable ASCII without spaces: all a credential, token or URL may hold,
 * and nothing that could end an HTTP header line. */
static bool is_token_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* True when s (n bytes) is short and drawn from letters, digits and extra:
 * then it may be quoted in a message. */
static bool quotable(const char *s, size_t n, const char *extra)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c && strchr(extra, c))))
			return false;
	}
	return true;
}

/*
 * Copy a credential value into dst (cap bytes).  what and where name it for
 * the message ("aws_secret_access_key", " on line 3 of ~/.aws/credentials");
 * the value itself is never quoted.
 */
static int set_value(char *dst, size_t cap, const char *v, size_t len,
		     const char *what, const char *where, char *err,
		     size_t errlen)
{
	if (len >= cap) {
		kms_seterr(err, errlen, "%s%s is longer than %zu characters",
			   what, where, cap - 1);
		return -EINVAL;
	}
	if (!is_token_text(v, len)) {
		kms_seterr(
			err, errlen,
			"%s%s contains a space, a control or non-ASCII character",
			what, where);
		return -EINVAL;
	}
	memcpy(dst, v, len);
	dst[len] = 0;
	return 0;
}

/* A URL without user information, query or fragment, for messages. */
static void url_shown(const char *url, char *out, size_t len)
{
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : url;
	const char *host = auth, *end;

	for (end = auth; *end && !strchr("/?#", *end); end++)
		if (*end == '@')
			host = end + 1;
	end += strcspn(end, "?#");
	snprintf(out, len, "%.*s%.*s", (int)(auth - url), url,
		 (int)(end - host), host);
}

/* The host of an http(s) URL (without brackets for IPv6), or false. */
static bool url_host(const char *url, char *host, size_t len)
{
	const char *auth = strstr(url, "://");
	const char *end, *h;
	size_t n;

	if (!auth)
		return false;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	h = auth;
	for (const char *q = auth; q < end; q++)
		if (*q == '@')
			h = q + 1;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (!close)
			return false;
		h++;
		n = (size_t)(close - h);
	} else {
		n = strcspn(h, ":/?#");
		if (h + n > end)
			n = (size_t)(end - h);
	}
	if (n == 0 || n >= len)
		return false;
	memcpy(host, h, n);
	host[n] = 0;
	return true;
}

/*
 * The SDKs' rule for AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere, but
 * plain http only to this host or to the ECS and EKS agents' link-local
 * addresses, so the authorization token never crosses a network in clear.
 * Only literal addresses and "localhost" count: a name is not resolved here.
 */
static bool container_url_allowed(const char *url)
{
	static const char *const agents[] = { "169.254.170.2", "169.254.170.23",
					      "fd00:ec2::23" };
	char host[256];
	struct in_addr a4;
	struct in6_addr a6, agent6;

	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	if (strncasecmp(url, "http://", 7) != 0 ||
	    !url_host(url, host, sizeof(host)))
		return false;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
		if (strcasecmp(host, agents[i]) == 0)
			return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (inet_pton(AF_INET6, "fd00:ec2::23", &agent6) == 1 &&
		    memcmp(&a6, &agent6, sizeof(a6)) == 0)
			return true;
		return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/* ---- files -------------------------------------------------------------- */

/* A shared file: where it is, and how messages name it. */
struct shared_file {
	char path[PATH_MAX]; /* "" when it cannot be named (no home) */
	char shown[PATH_MAX];
};

/* The home directory: $HOME, else the password database, so a daemon
 * started without HOME still finds its ~/.aws as the SDKs do. */
static int home_dir(char *out, size_t len)
{
	const char *h = env("HOME");
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!h) {
		if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) != 0 ||
		    !res || !res->pw_dir || !*res->pw_dir)
			return -ENOENT;
		h = res->pw_dir;
	}
	if ((size_t)snprintf(out, len, "%s", h) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Name a shared file: $var (a leading "~/" is the home directory, as in the
 * SDKs), else ~/.aws/name. */
static void shared_file_name(struct shared_file *f, const char *var,
			     const char *name)
{
	const char *v = env(var);
	char home[PATH_MAX];
	int n;

	f->path[0] = 0;
	if (v && strncmp(v, "~/", 2) != 0) {
		snprintf(f->shown, sizeof(f->shown), "%s", v);
		if ((size_t)snprintf(f->path, sizeof(f->path), "%s", v) >=
		    sizeof(f->path))
			f->path[0] = 0;
		return;
	}
	if (v)
		snprintf(f->shown, sizeof(f->shown), "%s", v);
	else
		snprintf(f->shown, sizeof(f->shown), "~/.aws/%s", name);
	if (home_dir(home, sizeof(home)) < 0)
		return;
	if (v)
		n = snprintf(f->path, sizeof(f->path), "%s%s", home, v + 1);
	else
		n = snprintf(f->path, sizeof(f->path), "%s/.aws/%s", home,
			     name);
	if (n < 0 || (size_t)n >= sizeof(f->path))
		f->path[0] = 0;
}

/*
 * Read a whole file into secure memory (shared files and token files hold
 * secrets), NUL-terminated.  0; -ENOENT when it does not exist (or path is
 * ""); -EINVAL when it cannot be read, is not a regular file or is larger
 * than max bytes; -ENOMEM.
 */
static int read_secret_file(const char *path, const char *shown, size_t max,
			    char **out, size_t *outlen, char *err,
			    size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, size;
	int fd, r;

	*out = NULL;
	*outlen = 0;
	if (!*path)
		return -ENOENT;
	/* O_NONBLOCK: a FIFO put there must not hang us before fstat. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		kms_seterr(err, errlen, "cannot open %s: %s", shown,
			   strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0) {
		kms_seterr(err, errlen, "cannot stat %s: %s", shown,
			   strerror(errno));
		r = -EINVAL;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		kms_seterr(err, errlen, "%s is not a regular file", shown);
		r = -EINVAL;
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
		kms_seterr(err, errlen, "%s is larger than %zu KiB", shown,
			   max / 1024);
		r = -EINVAL;
		goto out;
	}
	size = (size_t)st.st_size;
	buf = secmem_alloc(size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kms_seterr(err, errlen, "cannot read %s: %s", shown,
				   strerror(errno));
			r = -EINVAL;
			goto out;
		}
		if (n == 0) /* it shrank meanwhile: what is there is current */
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*out = buf;
	*outlen = len;
	buf = NULL;
	r = 0;
out:
	secmem_free(buf);
	close(fd);
	return r;
}

enum ini_kind {
	INI_CREDENTIALS, /* sections "[name]" */
	INI_CONFIG,	 /* "[profile name]", "[default]" */
};

/* Called for each property of the wanted profile; key and value are
 * trimmed, and point into the file's (secure) buffer. */
typedef int (*ini_fn)(void *arg, const char *key, const char *value,
		      unsigned lineno);

/* Does a section header (trimmed, without brackets) name profile? */
static bool section_matches(const char *name, enum ini_kind kind,
			    const char *profile)
{
	if (kind == INI_CREDENTIALS)
		return strcmp(name, profile) == 0;
	if (strcmp(name, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(name, "profile", 7) != 0 || !is_blank(name[7]))
		return false;
	name += 7;
	while (is_blank(*name))
		name++;
	return strcmp(name, profile) == 0;
}

/* Cut an inline comment: '#' or ';' after a blank, as the SDKs read it. */
static void cut_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if ((*p == '#' || *p == ';') && p > s && is_blank(p[-1])) {
			*p = 0;
			return;
		}
	}
}

/*
 * Scan an INI file held in buf (len bytes, modified in place) and call fn for
 * each property of profile's sections; *found tells whether there is one.
 * Indented lines after a property (other than section headers, as in the
 * SDKs) are its continuation or, after "s3 =", a nested sub-section: neither
 * holds anything read here, so they are skipped.
 * Lines of other sections are not interpreted beyond their headers.  Never
 * quotes a line: it may hold a secret.  0, -EINVAL (err says where), or
 * what fn returned.
 */
static int ini_scan(char *buf, size_t len, enum ini_kind kind,
		    const char *profile, const char *shown, ini_fn fn,
		    void *arg, bool *found, char *err, size_t errlen)
{
	char *line = buf, *end = buf + len;
	bool wanted = false, in_property = false;
	unsigned lineno = 0;
	int r;

	*found = false;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *eol = nl ? nl : end, *s, *eq, *key;
		bool indented = is_blank(*line);

		lineno++;
		if ((size_t)(eol - line) > MAX_LINE) {
			kms_seterr(err, errlen,
				   "line %u of %s is longer than %d characters",
				   lineno, shown, MAX_LINE);
			return -EINVAL;
		}
		*eol = 0;
		s = trim(line);
		line = nl ? nl + 1 : end;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (!close) {
				kms_seterr(
					err, errlen,
					"line %u of %s: section header without ']'",
					lineno, shown);
				return -EINVAL;
			}
			*close = 0;
			wanted = section_matches(trim(s + 1), kind, profile);
			if (wanted)
				*found = true;
			in_property = false;
			continue;
		}
		if (indented && in_property)
			continue;
		in_property = true;
		if (!wanted)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			kms_seterr(
				err, errlen,
				"line %u of %s: expected 'name = value' in profile '%s'",
				lineno, shown, profile);
			return -EINVAL;
		}
		*eq = 0;
		key = trim(s);
		if (!*key) {
			kms_seterr(err, errlen,
				   "line %u of %s: no name before '='", lineno,
				   shown);
			return -EINVAL;
		}
		cut_comment(eq + 1);
		r = fn(arg, key, trim(eq + 1), lineno);
		if (r)
			return r;
	}
	return 0;
}

/* What a profile holds in one file, gathered by collect_keys. */
struct profile_read {
	struct kms_creds *keys; /* secure memory; "" for absent keys */
	const char *profile;
	const char *shown;
	const char *unsupported; /* the first such setting, or NULL */
	char *err;
	size_t errlen;
};

static int collect_keys(void *arg, const char *key, const char *value,
			unsigned lineno)
{
	struct profile_read *pr = arg;
	char where[PATH_MAX + 64];
	char *dst;
	size_t cap;

	if (strcmp(key, "aws_access_key_id") == 0) {
		dst = pr->keys->access_key_id;
		cap = sizeof(pr->keys->access_key_id);
	} else if (strcmp(key, "aws_secret_access_key") == 0) {
		dst = pr->keys->secret;
		cap = sizeof(pr->keys->secret);
	} else if (strcmp(key, "aws_session_token") == 0) {
		dst = pr->keys->session_token;
		cap = sizeof(pr->keys->session_token);
	} else {
		for (size_t i = 0;
		     i < sizeof(UNSUPPORTED) / sizeof(*UNSUPPORTED); i++)
			if (!pr->unsupported &&
			    strcmp(key, UNSUPPORTED[i]) == 0)
				pr->unsupported = UNSUPPORTED[i];
		return 0; /* region, endpoint_url and the rest: not ours */
	}
	snprintf(where, sizeof(where), " on line %u of %s", lineno, pr->shown);
	return set_value(dst, cap, value, strlen(value), key, where, pr->err,
			 pr->errlen);
}

/* Gather profile's properties from one shared file into pr; an absent file
 * has no sections. */
static int load_profile(const struct shared_file *f, enum ini_kind kind,
			struct profile_read *pr, bool *found)
{
	char *buf;
	size_t len;
	int r;

	*found = false;
	r = read_secret_file(f->path, f->shown, MAX_FILE, &buf, &len, pr->err,
			     pr->errlen);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	r = ini_scan(buf, len, kind, pr->profile, f->shown, collect_keys, pr,
		     found, pr->err, pr->errlen);
	secmem_free(buf);
	return r;
}

/* ---- sources ------------------------------------------------------------ */

/* Each source fills c and returns 0; -ENOENT (msg says what was missing)
 * to let the chain go on; anything else is an error that ends it. */

static int src_env(struct kms_creds *c, char *msg, size_t len)
{
	const char *id = env("AWS_ACCESS_KEY_ID");
	const char *secret = env("AWS_SECRET_ACCESS_KEY");
	const char *token = env("AWS_SESSION_TOKEN");
	int r;

	if (!id && !secret) {
		kms_seterr(msg, len, "not in the environment");
		return -ENOENT;
	}
	if (!id || !secret) {
		kms_seterr(msg, len,
			   "%s is set in the environment but %s is not",
			   id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			   id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	r = set_value(c->access_key_id, sizeof(c->access_key_id), id,
		      strlen(id), "AWS_ACCESS_KEY_ID", "", msg, len);
	if (!r)
		r = set_value(c->secret, sizeof(c->secret), secret,
			      strlen(secret), "AWS_SECRET_ACCESS_KEY", "", msg,
			      len);
	if (!r && token)
		r = set_value(c->session_token, sizeof(c->session_token), token,
			      strlen(token), "AWS_SESSION_TOKEN", "", msg, len);
	if (r)
		return r;
	c->expiration = 0;
	snprintf(c->source, sizeof(c->source), "environment");
	return 0;
}

static int src_files(const struct creds_provider *p, struct kms_creds *c,
		     char *msg, size_t len)
{
	struct shared_file f[2];
	struct profile_read pr[2] = { { 0 } };
	bool found[2] = { false, false };
	const char *name = p->profile;
	int r, use = -1;

	shared_file_name(&f[0], "AWS_SHARED_CREDENTIALS_FILE", "credentials");
	shared_file_name(&f[1], "AWS_CONFIG_FILE", "config");
	for (int i = 0; i < 2; i++) {
		pr[i].profile = name;
		pr[i].shown = f[i].shown;
		pr[i].err = msg;
		pr[i].errlen = len;
		pr[i].keys = secmem_alloc(sizeof(*pr[i].keys));
		if (!pr[i].keys) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (int i = 0; i < 2; i++) {
		r = load_profile(&f[i], i ? INI_CONFIG : INI_CREDENTIALS,
				 &pr[i], &found[i]);
		if (r)
			goto out;
	}
	if (!found[0] && !found[1]) {
		if (p->profile_explicit) {
			kms_seterr(msg, len,
				   "profile '%s' not found in %s or %s", name,
				   f[0].shown, f[1].shown);
			r = -EINVAL;
		} else {
			kms_seterr(msg, len, "no profile '%s' in %s or %s",
				   name, f[0].shown, f[1].shown);
			r = -ENOENT;
		}
		goto out;
	}
	/* The credentials file wins: its keys are used as a set, never mixed
	 * with a token or a half of a key pair from the config file. */
	for (int i = 0; i < 2 && use < 0; i++)
		if (pr[i].keys->access_key_id[0] || pr[i].keys->secret[0])
			use = i;
	for (int i = 0; i < 2; i++) {
		if (!pr[i].unsupported)
			continue;
		if (p->profile_explicit || use >= 0) {
			kms_seterr(
				msg, len,
				"profile '%s' in %s uses %s, which cmkfs does not support (only static keys: aws_access_key_id and aws_secret_access_key)",
				name, f[i].shown, pr[i].unsupported);
			r = -EINVAL;
		} else {
			kms_seterr(msg, len,
				   "profile '%s' in %s uses %s (not supported)",
				   name, f[i].shown, pr[i].unsupported);
			r = -ENOENT;
		}
		goto out;
	}
	if (use < 0) {
		kms_seterr(
			msg, len,
			"profile '%s' (%s%s%s) has no aws_access_key_id and aws_secret_access_key",
			name, found[0] ? f[0].shown : "",
			found[0] && found[1] ? ", " : "",
			found[1] ? f[1].shown : "");
		r = p->profile_explicit ? -EINVAL : -ENOENT;
		goto out;
	}
	if (!pr[use].keys->access_key_id[0] || !pr[use].keys->secret[0]) {
		kms_seterr(msg, len, "profile '%s' in %s has %s but no %s",
			   name, f[use].shown,
			   pr[use].keys->secret[0] ? "aws_secret_access_key"
						   : "aws_access_key_id",
			   pr[use].keys->secret[0] ? "aws_access_key_id"
						   : "aws_secret_access_key");
		r = -EINVAL;
		goto out;
	}
	memcpy(c, pr[use].keys, sizeof(*c));
	c->expiration = 0;
	snprintf(c->source, sizeof(c->source), "profile %s (%s)", name,
		 f[use].shown);
	r = 0;
out:
	secmem_free(pr[0].keys);
	secmem_free(pr[1].keys);
	return r;
}

/* ---- HTTP --------------------------------------------------------------- */

/*
 * One request on a fresh handle: these happen at startup and about hourly,
 * so keeping a connection is not worth it.  Proxies are never used: the
 * endpoints are on this host or link-local.  Returns 0 with r->status and
 * r->body; -ECONNREFUSED when nothing answers at that address; -ETIMEDOUT;
 * -EMSGSIZE for an answer over MAX_RESPONSE; -EIO for other transfer
 * failures (why says which); -ENOMEM.
 */
static int http_do(long timeout_ms, bool put, const char *url,
		   const char *const *headers, size_t n_headers,
		   struct kms_http_reply *r, char *why, size_t whylen)
{
	const struct kms_http_request rq = {
		.url = url,
		.method = put ? "PUT" : "GET",
		.headers = headers,
		.n_headers = n_headers,
		.connect_ms = timeout_ms,
		.timeout_ms = timeout_ms,
		.ca_bundle = env("AWS_CA_BUNDLE"),
		.no_proxy = true,
		.max_body = MAX_RESPONSE,
	};
	char cerr[CURL_ERROR_SIZE];
	CURLcode rc = kms_http_exchange(NULL, &rq, r, cerr);

	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_FAILED_INIT:
		kms_seterr(why, whylen, "libcurl failed to initialise");
		return -EIO;
	case CURLE_OUT_OF_MEMORY:
		kms_seterr(why, whylen, "out of memory");
		return -ENOMEM;
	case CURLE_WRITE_ERROR:
		if (r->too_big) {
			kms_seterr(why, whylen, "answer larger than %d KiB",
				   MAX_RESPONSE / 1024);
			return -EMSGSIZE;
		}
		/* fall through */
	case CURLE_OPERATION_TIMEDOUT:
		kms_seterr(why, whylen, "no answer within %ld ms", timeout_ms);
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		kms_seterr(why, whylen, "%s",
			   cerr[0] ? cerr : curl_easy_strerror(rc));
		return -ECONNREFUSED;
	default:
		kms_seterr(why, whylen, "%s",
			   cerr[0] ? cerr : curl_easy_strerror(rc));
		return -EIO;
	}
}

/* A header line "<prefix><value>" in secure memory, or NULL. */
static char *secret_header(const char *prefix, const char *value)
{
	size_t a = strlen(prefix), b = strlen(value);
	char *h = secmem_alloc(a + b + 1);

	if (h) {
		memcpy(h, prefix, a);
		memcpy(h + a, value, b);
		h[a + b] = 0;
	}
	return h;
}

/* json-c keeps strings in its own heap and frees them unwiped: wipe the
 * bytes of a secret member in place first. */
static void wipe_json_string(json_object *obj, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(obj, key, &v) &&
	    json_object_is_type(v, json_type_string))
		secmem_wipe((void *)(uintptr_t)json_object_get_string(v),
			    (size_t)json_object_get_string_len(v));
}

static const char *json_member(json_object *obj, const char *key, size_t *len)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/*
 * Parse a credentials document (container or instance metadata): members
 * AccessKeyId, SecretAccessKey, Token (required from IMDS, optional from a
 * container) and Expiration; from IMDS also Code, which must be "Success".
 * what names the source for messages.  0, -EINVAL (malformed), -EIO (IMDS
 * reported a failure), -ENOMEM.
 */
static int parse_creds_json(const char *body, size_t len, bool imds,
			    const char *what, struct kms_creds *c, char *err,
			    size_t errlen)
{
	static const char *const secret_members[] = { "SecretAccessKey",
						      "Token" };
	json_tokener *tok = json_tokener_new();
	json_object *obj = NULL;
	char where[MAX_URL + MAX_ROLE + 96];
	const char *s;
	size_t n, end;
	int r;

	if (!tok)
		return -ENOMEM;
	snprintf(where, sizeof(where), " in the answer of %s", what);
	/* The tokener gathers each string in one buffer and frees every
	 * outgrown one unwiped: grow it to the whole answer first, so that
	 * one buffer holds the secrets, and wipe it below. */
	if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
		r = -ENOMEM;
		goto out;
	}
	printbuf_reset(tok->pb);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	end = json_tokener_get_parse_end(tok);
	while (obj && end < len && strchr(" \t\r\n", body[end]))
		end++;
	if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
	    end != len) {
		kms_seterr(err, errlen, "%s: the answer is not valid JSON",
			   what);
		r = -EINVAL;
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		kms_seterr(err, errlen, "%s: the answer is not a JSON object",
			   what);
		r = -EINVAL;
		goto out;
	}
	if (imds) {
		s = json_member(obj, "Code", &n);
		if (!s || strcmp(s, "Success") != 0) {
			if (s && quotable(s, n, "_-."))
				kms_seterr(err, errlen,
					   "%s: Code is '%s', not 'Success'",
					   what, s);
			else
				kms_seterr(
					err, errlen,
					"%s: the answer has no Code 'Success'",
					what);
			r = -EIO;
			goto out;
		}
	}
	s = json_member(obj, "AccessKeyId", &n);
	if (!s || !n) {
		kms_seterr(err, errlen, "%s: no AccessKeyId in the answer",
			   what);
		r = -EINVAL;
		goto out;
	}
	r = set_value(c->access_key_id, sizeof(c->access_key_id), s, n,
		      "AccessKeyId", where, err, errlen);
	if (r)
		goto out;
	s = json_member(obj, "SecretAccessKey", &n);
	if (!s || !n) {
		kms_seterr(err, errlen, "%s: no SecretAccessKey in the answer",
			   what);
		r = -EINVAL;
		goto out;
	}
	r = set_value(c->secret, sizeof(c->secret), s, n, "SecretAccessKey",
		      where, err, errlen);
	if (r)
		goto out;
	s = json_member(obj, "Token", &n);
	if (imds && (!s || !n)) {
		kms_seterr(err, errlen, "%s: no Token in the answer", what);
		r = -EINVAL;
		goto out;
	}
	if (s && n) {
		r = set_value(c->session_token, sizeof(c->session_token), s, n,
			      "Token", where, err, errlen);
		if (r)
			goto out;
	}
	/* Expiration is what makes refresh possible: without it temporary
	 * credentials would be used until they fail. */
	s = json_member(obj, "Expiration", &n);
	if (!s || kms_parse_rfc3339(s, n, &c->expiration) < 0) {
		if (s && quotable(s, n, "-:.+TZtz"))
			kms_seterr(
				err, errlen,
				"%s: Expiration '%s' is not an RFC 3339 time",
				what, s);
		else
			kms_seterr(err, errlen,
				   "%s: no RFC 3339 Expiration in the answer",
				   what);
		r = -EINVAL;
		goto out;
	}
	r = 0;
out:
	if (obj)
		for (size_t i = 0; i < 2; i++)
			wipe_json_string(obj, secret_members[i]);
	json_object_put(obj);
	if (tok->pb && tok->pb->buf)
		secmem_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	return r;
}

/* The errno a failed transfer ends the chain with: the header promises
 * -EIO or -ETIMEDOUT for a service that fails, -EINVAL for a bad answer. */
static int transfer_errno(int r)
{
	if (r == -ECONNREFUSED)
		return -EIO;
	if (r == -EMSGSIZE)
		return -EINVAL;
	return r;
}

/* GET url and take the credentials document it answers (container and
 * IMDS serve the same shape; IMDS must include a Token). */
static int get_creds_doc(const struct creds_provider *p, const char *url,
			 const char *const *headers, size_t n_headers,
			 struct kms_http_reply *rep, bool imds,
			 const char *what, struct kms_creds *c, char *msg,
			 size_t len)
{
	char why[512];
	int r = http_do(p->timeout_ms, false, url, headers, n_headers, rep, why,
			sizeof(why));

	if (r) {
		kms_seterr(msg, len, "%s: %s", what, why);
		return transfer_errno(r);
	}
	if (rep->status != 200) {
		kms_seterr(msg, len, "%s: HTTP %ld", what, rep->status);
		return -EIO;
	}
	return parse_creds_json(rep->body, rep->len, imds, what, c, msg, len);
}

static int src_container(const struct creds_provider *p, struct kms_creds *c,
			 char *msg, size_t len)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char url[MAX_URL], shown[MAX_URL], what[MAX_URL + 64];
	struct kms_http_reply rep = { 0 };
	char *file = NULL, *auth = NULL;
	const char *headers[1];
	size_t n_headers = 0, n;
	int r;

	if (!rel && !full) {
		kms_seterr(msg, len, "no container credentials");
		return -ENOENT;
	}
	/* The relative form wins, as in the SDKs. */
	if (rel && rel[0] != '/') {
		kms_seterr(
			msg, len,
			"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
		return -EINVAL;
	}
	if (!rel && !container_url_allowed(full)) {
		url_shown(full, shown, sizeof(shown));
		kms_seterr(
			msg, len,
			"AWS_CONTAINER_CREDENTIALS_FULL_URI %s: only https, or http to a loopback address, may carry credentials",
			shown);
		return -EINVAL;
	}
	n = rel ? (size_t)snprintf(url, sizeof(url), "%s%s", CONTAINER_HOST,
				   rel)
		: (size_t)snprintf(url, sizeof(url), "%s", full);
	if (n >= sizeof(url) || !is_token_text(url, n)) {
		kms_seterr(
			msg, len,
			"%s is too long or contains spaces or control characters",
			rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
			    : "AWS_CONTAINER_CREDENTIALS_FULL_URI");
		return -EINVAL;
	}
	url_shown(url, shown, sizeof(shown));
	snprintf(what, sizeof(what), "container credentials from %s", shown);

	if (token_file) {
		r = read_secret_file(token_file, token_file, MAX_TOKEN_FILE,
				     &file, &n, msg, len);
		if (r == -ENOENT)
			kms_seterr(
				msg, len,
				"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s does not exist",
				token_file);
		if (r) {
			r = r == -ENOENT ? -EINVAL : r;
			goto out;
		}
		token = trim(file);
		if (!*token) {
			kms_seterr(
				msg, len,
				"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is empty",
				token_file);
			r = -EINVAL;
			goto out;
		}
	}
	if (token) {
		/* A line break would let the token add headers of its own. */
		for (const char *q = token; *q; q++) {
			if ((unsigned char)*q < ' ' || *q == 0x7f) {
				kms_seterr(
					msg, len,
					"the container authorization token (%s) contains a control character",
					token_file
						? token_file
						: "AWS_CONTAINER_AUTHORIZATION_TOKEN");
				r = -EINVAL;
				goto out;
			}
		}
		auth = secret_header(AUTH_HEADER, token);
		if (!auth) {
			r = -ENOMEM;
			goto out;
		}
		headers[n_headers++] = auth;
	}
	r = get_creds_doc(p, url, headers, n_headers, &rep, false, what, c, msg,
			  len);
	if (r)
		goto out;
	snprintf(c->source, sizeof(c->source), "container credentials");
out:
	kms_http_reply_free(&rep);
	secmem_free(auth);
	secmem_free(file);
	return r;
}

/* The instance metadata endpoint, without a trailing '/'. */
static int imds_endpoint(char *base, size_t len, char *msg, size_t msglen)
{
	const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	char host[256];
	size_t n;

	if (mode && strcasecmp(mode, "IPv4") != 0 &&
	    strcasecmp(mode, "IPv6") != 0) {
		kms_seterr(
			msg, msglen,
			"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is neither IPv4 nor IPv6");
		return -EINVAL;
	}
	if (!ep)
		ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_V6 : IMDS_V4;
	n = strlen(ep);
	while (n && ep[n - 1] == '/')
		n--;
	if (n >= len || !is_token_text(ep, n))
		goto bad;
	memcpy(base, ep, n);
	base[n] = 0;
	if ((strncasecmp(base, "http://", 7) != 0 &&
	     strncasecmp(base, "https://", 8) != 0) ||
	    !url_host(base, host, sizeof(host)))
		goto bad;
	return 0;
bad:
	kms_seterr(
		msg, msglen,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http or https URL");
	return -EINVAL;
}

/* IAM role names: letters, digits and +=,.@_- (the IAM rule), which also
 * keeps the role name from reshaping the URL it is put into. */
static bool valid_role(const char *s, size_t n)
{
	return n <= MAX_ROLE && quotable(s, n, "+=,.@_-");
}

/*
 * IMDSv2: a session token, the role name, then the role's credentials.
 * probing: while resolving the chain, an endpoint that does not answer the
 * token request means "not on EC2" (-ENOENT); when refreshing it is an
 * error.  No IMDSv1 fallback: IMDSv1 is what SSRF attacks use.
 */
static int src_imds(const struct creds_provider *p, bool probing,
		    struct kms_creds *c, char *msg, size_t len)
{
	const char *off = env("AWS_EC2_METADATA_DISABLED");
	char base[MAX_URL], url[MAX_URL + MAX_ROLE + 64], shown[MAX_URL];
	char what[MAX_URL + MAX_ROLE + 64], why[512], role[MAX_ROLE + 1];
	const char *ttl[] = { IMDS_TTL_HEADER };
	struct kms_http_reply rep = { 0 };
	const char *hdr_list[1];
	char *hdr = NULL, *token;
	size_t n;
	int r;

	if (off && strcasecmp(off, "true") == 0) {
		kms_seterr(
			msg, len,
			"instance metadata disabled (AWS_EC2_METADATA_DISABLED)");
		return -ENOENT;
	}
	r = imds_endpoint(base, sizeof(base), msg, len);
	if (r)
		return r;
	url_shown(base, shown, sizeof(shown));
	snprintf(url, sizeof(url), "%s%s", base, IMDS_TOKEN_PATH);
	r = http_do(p->timeout_ms, true, url, ttl, 1, &rep, why, sizeof(why));
	if (r && probing && (r == -ECONNREFUSED || r == -ETIMEDOUT)) {
		kms_seterr(msg, len, "instance metadata unreachable at %s",
			   shown);
		r = -ENOENT;
		goto out;
	}
	if (r) {
		kms_seterr(msg, len, "instance metadata at %s: %s", shown, why);
		r = transfer_errno(r);
		goto out;
	}
	if (rep.status != 200) {
		/* 403 is IMDS turned off for the instance; other answers come
		 * from something that is not IMDSv2 (a proxy on a host off
		 * EC2).  Either way no credentials here, unless we had some
		 * from it before. */
		kms_seterr(
			msg, len,
			"instance metadata at %s refused a session token (HTTP %ld)",
			shown, rep.status);
		r = probing ? -ENOENT : -EIO;
		goto out;
	}
	token = trim(rep.body);
	n = strlen(token);
	if (!n || n > MAX_IMDS_TOKEN || !is_token_text(token, n)) {
		kms_seterr(msg, len,
			   "instance metadata at %s: malformed session token",
			   shown);
		r = -EINVAL;
		goto out;
	}
	hdr = secret_header(IMDS_TOKEN_HEADER, token);
	if (!hdr) {
		r = -ENOMEM;
		goto out;
	}
	hdr_list[0] = hdr;

	snprintf(url, sizeof(url), "%s%s", base, IMDS_ROLE_PATH);
	r = http_do(p->timeout_ms, false, url, hdr_list, 1, &rep, why,
		    sizeof(why));
	if (r) {
		kms_seterr(msg, len, "instance metadata at %s: %s", shown, why);
		r = transfer_errno(r);
		goto out;
	}
	n = strcspn(rep.body, "\r\n");
	if (rep.status == 404 || (rep.status == 200 && n == 0)) {
		kms_seterr(msg, len, "no IAM role in instance metadata at %s",
			   shown);
		r = -ENOENT;
		goto out;
	}
	if (rep.status != 200) {
		kms_seterr(
			msg, len,
			"instance metadata at %s: HTTP %ld for the IAM role name",
			shown, rep.status);
		r = -EIO;
		goto out;
	}
	if (!valid_role(rep.body, n)) {
		kms_seterr(msg, len,
			   "instance metadata at %s: malformed IAM role name",
			   shown);
		r = -EINVAL;
		goto out;
	}
	memcpy(role, rep.body, n);
	role[n] = 0;

	snprintf(url, sizeof(url), "%s%s%s", base, IMDS_ROLE_PATH, role);
	snprintf(what, sizeof(what), "instance metadata at %s, role %s", shown,
		 role);
	r = get_creds_doc(p, url, hdr_list, 1, &rep, true, what, c, msg, len);
	if (r)
		goto out;
	snprintf(c->source, sizeof(c->source), "instance profile %s", role);
out:
	secmem_free(hdr);
	kms_http_reply_free(&rep);
	return r;
}

/* ---- the chain ---------------------------------------------------------- */

static int fetch(const struct creds_provider *p, enum source s, bool probing,
		 struct kms_creds *c, char *msg, size_t len)
{
	/* A source that failed halfway may have filled some fields. */
	secmem_wipe(c, sizeof(*c));
	msg[0] = 0;
	switch (s) {
	case SRC_ENV:
		return src_env(c, msg, len);
	case SRC_FILES:
		return src_files(p, c, msg, len);
	case SRC_CONTAINER:
		return src_container(p, c, msg, len);
	case SRC_IMDS:
		return src_imds(p, probing, c, msg, len);
	case SRC_NONE:
		break;
	}
	kms_seterr(msg, len, "no such source");
	return -EINVAL;
}

/* Walk the chain; on -ENOENT err lists what each source lacked. */
static int resolve(const struct creds_provider *p, struct kms_creds *c,
		   enum source *kind, char *err, size_t errlen)
{
	char msg[MAX_MSG], tried[MAX_MSG * 2] = "";
	size_t used = 0;
	int r;

	for (enum source s = SRC_ENV; s <= SRC_IMDS; s++) {
		r = fetch(p, s, true, c, msg, sizeof(msg));
		if (r == 0) {
			*kind = s;
			return 0;
		}
		if (r != -ENOENT) {
			kms_seterr(err, errlen, "%s", msg);
			return r;
		}
		if (used < sizeof(tried)) {
			int n = snprintf(tried + used, sizeof(tried) - used,
					 "%s%s", used ? ", " : "", msg);

			used += n > 0 ? (size_t)n : 0;
		}
	}
	kms_seterr(err, errlen, "no AWS credentials: %s", tried);
	return -ENOENT;
}

static bool needs_refresh(const struct kms_creds *c, int64_t now)
{
	return c->expiration != 0 && now >= c->expiration - CREDS_REFRESH_AHEAD;
}

int creds_get(struct creds_provider *p, struct kms_creds **out, char *err,
	      size_t errlen)
{
	struct kms_creds *fresh = NULL, *copy;
	char msg[MAX_MSG];
	int64_t now = (int64_t)time(NULL);
	int r = 0;

	if (err && errlen)
		err[0] = 0;
	*out = NULL;
	pthread_mutex_lock(&p->lock);
	if (!p->cache || needs_refresh(p->cache, now)) {
		enum source kind = p->kind;

		fresh = secmem_alloc(sizeof(*fresh));
		if (!fresh) {
			r = -ENOMEM;
			goto out;
		}
		if (p->cache) {
			/* Refresh from the source that answered: the others
			 * had nothing when the chain was walked. */
			r = fetch(p, p->kind, false, fresh, msg, sizeof(msg));
			if (r)
				kms_seterr(
					err, errlen,
					"cannot refresh the credentials from %s: %s",
					p->cache->source, msg);
		} else {
			r = resolve(p, fresh, &kind, err, errlen);
		}
		if (r == 0) {
			secmem_free(p->cache);
			p->cache = fresh;
			p->kind = kind;
			fresh = NULL;
		} else if (p->cache && now < p->cache->expiration) {
			/* Still valid: a service that hiccups must not break
			 * a mount; the next call tries again (as the SDKs). */
			r = 0;
			if (err && errlen)
				err[0] = 0;
		} else {
			goto out;
		}
	}
	copy = secmem_alloc(sizeof(*copy));
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(copy, p->cache, sizeof(*copy));
	*out = copy;
out:
	pthread_mutex_unlock(&p->lock);
	secmem_free(fresh);
	return r;
}

void creds_release(struct kms_creds *c)
{
	secmem_free(c);
}

/* ---- provider ----------------------------------------------------------- */

int creds_provider_new(struct creds_provider **out,
		       const struct creds_options *opt)
{
	const char *name = opt && opt->profile && *opt->profile
				   ? opt->profile
				   : env("AWS_PROFILE");
	struct creds_provider *p;
	int r;

	*out = NULL;
	r = kms_curl_global_init();
	if (r)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->profile = strdup(name ? name : "default");
	if (!p->profile) {
		free(p);
		return -ENOMEM;
	}
	p->profile_explicit = name != NULL;
	p->timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms
						   : DEFAULT_TIMEOUT_MS;
	r = pthread_mutex_init(&p->lock, NULL);
	if (r) {
		free(p->profile);
		free(p);
		return -r;
	}
	*out = p;
	return 0;
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	secmem_free(p->cache);
	pthread_mutex_destroy(&p->lock);
	free(p->profile);
	free(p);
}

const char *creds_profile_name(const struct creds_provider *p)
{
	return p->profile;
}

/* Remembers the last value of one key (later lines win, as in the SDKs). */
struct setting_read {
	const char *key;
	const char *value; /* into the file's buffer */
};

static int find_setting(void *arg, const char *key, const char *value,
			unsigned lineno)
{
	struct setting_read *sr = arg;

	(void)lineno;
	if (strcmp(key, sr->key) == 0)
		sr->value = value;
	return 0;
}

int creds_profile_setting(const struct creds_provider *p, const char *key,
			  char *out, size_t len)
{
	struct setting_read sr = { .key = key };
	struct shared_file f;
	char *buf = NULL;
	size_t n;
	bool found;
	int r;

	/* out is ordinary memory: secrets are creds_get's business. */
	if (strcmp(key, "aws_secret_access_key") == 0 ||
	    strcmp(key, "aws_session_token") == 0)
		return -EINVAL;
	shared_file_name(&f, "AWS_CONFIG_FILE", "config");
	r = read_secret_file(f.path, f.shown, MAX_FILE, &buf, &n, NULL, 0);
	if (r)
		return r;
	r = ini_scan(buf, n, INI_CONFIG, p->profile, f.shown, find_setting, &sr,
		     &found, NULL, 0);
	if (r)
		goto out;
	if (!sr.value || !*sr.value) {
		r = -ENOENT;
		goto out;
	}
	n = strlen(sr.value);
	if (n >= len) {
		r = -ERANGE;
		goto out;
	}
	memcpy(out, sr.value, n + 1);
	r = 0;
out:
	secmem_free(buf);
	return r;
}
