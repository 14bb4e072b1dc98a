/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plugin.c — libcryptsetup-token-aws-kms.so and libcryptsetup-token-kmip.so
 * (this source built once for each TOKEN_TYPE), the external LUKS2 token
 * plugins that let stock cryptsetup, systemd-cryptsetup (crypttab) or any
 * other libcryptsetup program open a cmkfs volume through its key, an AWS
 * KMS key or a KMIP server's.  It is glue for libcryptsetup's token ABI and
 * nothing more: the token's parse, its binding to the header, the key pin,
 * the client of the key's service and the Decrypt are volume/'s
 * (vol_token_secret), the header is read through crypto/luks2/ over the
 * host's own handle (luks2_borrow).  The kmip plugin finds this client's
 * certificate, key and CA as cmkfs does (CMKFS_KMIP_CERT, ..., else
 * /etc/cmkfs/kmip/).
 *
 * It runs inside another program, as root, often at boot:
 * - it says everything through libcryptsetup's log callback (crypt_logf),
 *   never on stdout or stderr, and never a secret, a whole ciphertext or a
 *   KMS response body;
 * - it changes none of the host's libcryptsetup settings (luks2_borrow is
 *   the first call into crypto/luks2/ in every entry point, which makes
 *   that module a guest) and never exits, prompts or installs a signal
 *   handler;
 * - its KMS time is bounded (CMKFS_TOKEN_TIMEOUT): systemd-cryptsetup runs
 *   the token with no timeout of its own;
 * - the keyslot secret it hands back lives in secure memory, wiped when
 *   libcryptsetup gives it back (cryptsetup_token_buffer_free).
 *
 * Return codes, as libcryptsetup reads them (luks2_token.c): 0 with the
 * secret; -EAGAIN "requires additional missing resource" (KMS unreachable,
 * timed out, throttled or failing: the next token or the passphrase prompt
 * still gets its turn); -ENOENT "no usable token" (KMS refused, the token
 * is malformed, bound to another header or under a key this host does not
 * trust); -ENOMEM.  Never -EPERM: libcryptsetup rewrites a plugin's -EPERM
 * (and -EINVAL, and anything positive) into -ENOENT, and keeps -EPERM for
 * "the passphrase the token gave did not open its keyslot".  Any other
 * errno would end libcryptsetup's walk over the tokens at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libcryptsetup.h>

#include "crypto.h"
#include "kms.h"
#include "luks2.h"
#include "volume.h"

/* The token type this build serves (the Makefile says which). */
#ifndef TOKEN_TYPE
#define TOKEN_TYPE VOL_TOKEN_TYPE
#endif
#define TOKEN_KIND                                                             \
	(strcmp(TOKEN_TYPE, VOL_TOKEN_TYPE_KMIP) ? VOL_KEY_AWS : VOL_KEY_KMIP)

/* The KMS time of one open, in seconds: CMKFS_TOKEN_TIMEOUT, else this. */
#define TIMEOUT_DEFAULT_S 30
#define TIMEOUT_MAX_S	  600
/* Per request, at most (a slower answer is retried within the budget):
 * ATTEMPT_MS, or a third of the whole for a short one, never under
 * ATTEMPT_MIN_MS. */
#define ATTEMPT_MS     5000
#define ATTEMPT_MIN_MS 1000
#define CONNECT_MS     2000
/* Enough that the time budget, not the count, ends the retries. */
#define MAX_ATTEMPTS 16
/* Bytes of the wrapped secret luksDump shows the start of (in base64). */
#define DUMP_PREFIX 12

/* Exported: the ABI of libcryptsetup.h, "crypt tokens". */
const char *cryptsetup_token_version(void);
int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
			  size_t *buffer_len, void *usrptr);
int cryptsetup_token_open_pin(struct crypt_device *cd, int token,
			      const char *pin, size_t pin_size, char **buffer,
			      size_t *buffer_len, void *usrptr);
void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
void cryptsetup_token_dump(struct crypt_device *cd, const char *json);

/* The volume as messages name it: the header's device. */
static const char *volume_name(struct crypt_device *cd)
{
	const char *s = crypt_get_metadata_device_name(cd);

	if (!s)
		s = crypt_get_device_name(cd); /* the header is not detached */
	return s ? s : "the volume";
}

/* A token string (untrusted) made fit for one line of output: anything
 * but printable ASCII becomes '?', so a header cannot forge lines of
 * luksDump or of the log. */
static const char *printable(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 1 < len; in++)
		out[n++] = *in >= 0x20 && *in < 0x7f ? *in : '?';
	out[n] = 0;
	return out;
}

/* One line through libcryptsetup's log, made printable (messages quote
 * the token); at these levels libcryptsetup ends the line itself. */
__attribute__((format(printf, 3, 4))) static void
say(struct crypt_device *cd, int level, const char *fmt, ...)
{
	char line[2048], clean[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	crypt_logf(cd, level, "%s", printable(line, clean, sizeof(clean)));
}

#define log_error(cd, ...)   say(cd, CRYPT_LOG_ERROR, __VA_ARGS__)
#define log_verbose(cd, ...) say(cd, CRYPT_LOG_VERBOSE, __VA_ARGS__)
#define log_debug(cd, ...)   say(cd, CRYPT_LOG_DEBUG, __VA_ARGS__)

/* CMKFS_TOKEN_TIMEOUT, in whole seconds 1..TIMEOUT_MAX_S, else the
 * default (with a word in the log). */
static long timeout_ms(struct crypt_device *cd)
{
	const char *s = getenv("CMKFS_TOKEN_TIMEOUT");
	char *end;
	long v;

	if (!s || !*s)
		return TIMEOUT_DEFAULT_S * 1000L;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || *s < '0' || *s > '9' || v < 1 ||
	    v > TIMEOUT_MAX_S) {
		log_error(cd,
			  TOKEN_TYPE ": CMKFS_TOKEN_TIMEOUT is not a number of "
				     "seconds from 1 to %d; using %d",
			  TIMEOUT_MAX_S, TIMEOUT_DEFAULT_S);
		return TIMEOUT_DEFAULT_S * 1000L;
	}
	return v * 1000;
}

/*
 * The KMS client's limits for a boot-time open within total ms: a bounded
 * connect and request, retries of transient failures while the budget
 * lasts.  A retry starts only while the budget allows and then lasts one
 * request at most, so budget + one request = total.  (Each attempt may
 * also look credentials up, EC2 instance metadata answering within 1 s a
 * request, which can add a few seconds.)
 */
static void boot_options(long total, struct kms_options *ko)
{
	long attempt = total / 3;

	if (attempt < ATTEMPT_MIN_MS)
		attempt = ATTEMPT_MIN_MS;
	memset(ko, 0, sizeof(*ko));
	ko->timeout_ms = attempt < ATTEMPT_MS ? attempt : ATTEMPT_MS;
	ko->connect_timeout_ms =
		ko->timeout_ms < CONNECT_MS ? ko->timeout_ms : CONNECT_MS;
	ko->max_attempts = MAX_ATTEMPTS;
	ko->retry_budget_ms =
		total > ko->timeout_ms ? total - ko->timeout_ms : 1;
}

/*
 * One budget for all the tokens of a volume: libcryptsetup walks them one
 * after the other, each open after the last one's failure, and a volume
 * with several keys — or a header given many copies of its token — would
 * otherwise cost CMKFS_TOKEN_TIMEOUT per token with KMS down.  The first
 * open of a volume's walk starts a window of the whole budget; the opens
 * that follow it (each within WALK_GAP_MS of the last one's end) get what
 * is left of it, and none once it is spent.
 */
#define WALK_GAP_MS 5000

static struct {
	pthread_mutex_t lock;
	char uuid[40];
	long long deadline, last_end; /* ms, CLOCK_MONOTONIC */
} walk = { .lock = PTHREAD_MUTEX_INITIALIZER };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of the budget (total ms) of cd's walk: 0 when spent. */
static long walk_left(struct crypt_device *cd, long total)
{
	const char *uuid = crypt_get_uuid(cd);
	long long now = now_ms(), left;

	pthread_mutex_lock(&walk.lock);
	if (!uuid || strcmp(uuid, walk.uuid) ||
	    now - walk.last_end > WALK_GAP_MS) {
		snprintf(walk.uuid, sizeof(walk.uuid), "%s", uuid ? uuid : "");
		walk.deadline = now + total;
	}
	walk.last_end = now;
	left = walk.deadline - now;
	pthread_mutex_unlock(&walk.lock);
	return left > 0 ? (long)left : 0;
}

static void walk_step_done(void)
{
	pthread_mutex_lock(&walk.lock);
	walk.last_end = now_ms();
	pthread_mutex_unlock(&walk.lock);
}

/* The CMK this host trusts, as the cmkfs CLI takes it: CMKFS_KEY_ARN. */
/* A setting of the environment, NULL when unset or empty. */
static const char *setting(const char *name)
{
	const char *s = getenv(name);

	return s && *s ? s : NULL;
}

/* How libcryptsetup is to take the failure e (vol_token_secret's r):
 * waiting may help (-EAGAIN), or it will not (-ENOENT). */
static int token_errno(int r, const struct vol_error *e)
{
	if (r == -ENOMEM)
		return -ENOMEM;
	if ((e->what == VOL_FAIL_UNWRAP || e->what == VOL_FAIL_KMS_CLIENT) &&
	    kms_status_transient(e->kms.status))
		return -EAGAIN;
	/* Refusals, a malformed or foreign token, a key not trusted: never
	 * -EPERM (see the top of this file). */
	return -ENOENT;
}

/* The one error line of a failed open: what `cmkfs unlock-test` says. */
static void report_failure(struct crypt_device *cd, int token,
			   const struct vol_error *e)
{
	char why[900], kms[640] = "";

	vol_failure_reason(e, why, sizeof(why));
	if (e->what == VOL_FAIL_UNWRAP || e->what == VOL_FAIL_KMS_CLIENT) {
		kms[0] = ':';
		kms[1] = ' ';
		kms_error_format(&e->kms, kms + 2, sizeof(kms) - 2);
	}
	log_error(cd, TOKEN_TYPE " token %d: cannot unlock %s: %s%s", token,
		  volume_name(cd), why, kms);
	if (e->what == VOL_FAIL_UNWRAP || e->what == VOL_FAIL_KMS_CLIENT)
		log_debug(cd,
			  TOKEN_TYPE
			  " token %d: KMS status %s after %u request(s), "
			  "HTTP %ld, request id %s",
			  token, kms_status_name(e->kms.status),
			  e->kms.attempts, e->kms.http_status,
			  e->kms.request_id[0] ? e->kms.request_id : "-");
}

/* The header of cd as crypto/luks2/ sees it: 0, or -errno with err
 * said. */
static int borrow(struct crypt_device *cd, struct luks2_vol **v,
		  struct luks2_info *info, char *err, size_t len)
{
	int r = luks2_borrow(cd, 0, v, err, len);

	if (r)
		return r;
	r = luks2_info(*v, info);
	if (r) {
		snprintf(err, len, "cannot read the header");
		luks2_close(*v);
		*v = NULL;
	}
	return r;
}

int cryptsetup_token_open_pin(struct crypt_device *cd, int token,
			      const char *pin, size_t pin_size, char **buffer,
			      size_t *buffer_len, void *usrptr)
{
	struct luks2_vol *v = NULL;
	struct luks2_info info;
	struct kms_options ko;
	struct vol_trust trust = {
		.key_arn = setting("CMKFS_KEY_ARN"),
		.kmip_servers = setting("CMKFS_KMIP_SERVERS"),
	};
	struct vol_token t;
	struct vol_error e;
	uint8_t *secret = NULL;
	size_t len = 0;
	char err[512];
	long total;
	int r;

	(void)pin_size;
	(void)usrptr;
	*buffer = NULL;
	*buffer_len = 0;
	if (pin) {
		log_error(cd,
			  TOKEN_TYPE " token %d takes no PIN: KMS unwraps its "
				     "secret",
			  token);
		return -ENOENT;
	}
	r = borrow(cd, &v, &info, err, sizeof(err));
	if (r) {
		log_error(cd, TOKEN_TYPE " token %d: cannot unlock %s: %s",
			  token, volume_name(cd), err);
		return r == -ENOMEM ? -ENOMEM : -ENOENT;
	}
	total = walk_left(cd, timeout_ms(cd));
	if (!total) {
		luks2_close(v);
		log_error(cd,
			  TOKEN_TYPE
			  " token %d: not tried: the KMS time of this "
			  "volume (CMKFS_TOKEN_TIMEOUT, for all its tokens) "
			  "is spent",
			  token);
		return -EAGAIN;
	}
	boot_options(total, &ko);
	log_debug(cd,
		  TOKEN_TYPE " token %d: KMS within %ld ms (%ld ms a request, "
			     "connect %ld ms); key %s",
		  token, total, ko.timeout_ms, ko.connect_timeout_ms,
		  trust.key_arn ? "pinned by CMKFS_KEY_ARN" : "not pinned");
	r = vol_token_secret(v, &info, token, &ko, &trust, &t, &secret, &len,
			     &e);
	walk_step_done();
	luks2_close(v);
	if (r == 0 && t.kind != TOKEN_KIND) {
		/* libcryptsetup asks a plugin only for its own type: the
		 * token changed under us. */
		secmem_free(secret);
		vol_token_free(&t);
		r = 1;
	}
	if (r > 0) {
		log_error(cd,
			  TOKEN_TYPE " token %d is not a " TOKEN_TYPE
				     " token of an "
				     "active keyslot",
			  token);
		return -ENOENT;
	}
	if (r < 0) {
		report_failure(cd, token, &e);
		return token_errno(r, &e);
	}
	log_verbose(cd,
		    TOKEN_TYPE
		    " token %d: keyslot secret unwrapped by KMS key %s",
		    token, t.key_arn);
	log_debug(cd, TOKEN_TYPE " token %d: region %s, binding %s", token,
		  t.region, t.segment_bound ? "volume+segment" : "volume");
	vol_token_free(&t);
	*buffer = (char *)secret;
	*buffer_len = len;
	return 0;
}

int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
			  size_t *buffer_len, void *usrptr)
{
	return cryptsetup_token_open_pin(cd, token, NULL, 0, buffer, buffer_len,
					 usrptr);
}

void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	(void)buffer_len;
	secmem_free(buffer); /* wipes it */
}

/*
 * Called before every open and when a token is stored (`cryptsetup token
 * import`): non-zero refuses it.  The token must parse as a token of this
 * plugin's type does for an unlock; when the header is one cmkfs accepts, its
 * binding must be this header's (a token copied from another volume is refused
 * at import).
 */
int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	struct luks2_vol *v = NULL;
	struct luks2_info info;
	struct vol_binding b;
	struct vol_token t;
	char why[512];
	int r;

	r = vol_token_parse(json, &t, why, sizeof(why));
	if (r == -ENOMEM) {
		log_error(cd, TOKEN_TYPE " token: out of memory");
		return 1;
	}
	if (!r && t.kind != TOKEN_KIND) {
		snprintf(why, sizeof(why), "it is a token of another type");
		vol_token_free(&t);
		r = -EINVAL;
	}
	if (r) {
		log_error(cd, TOKEN_TYPE " token refused: %s", why);
		return 1;
	}
	r = borrow(cd, &v, &info, why, sizeof(why));
	if (r) {
		/* Nothing to compare with: the open will say why. */
		log_debug(cd, TOKEN_TYPE " token: binding not checked: %s",
			  why);
		vol_token_free(&t);
		return 0;
	}
	vol_binding_of(&info, &b);
	r = vol_token_matches(&t, &b, why, sizeof(why));
	luks2_close(v);
	vol_token_free(&t);
	if (r) {
		log_error(cd, TOKEN_TYPE " token refused: %s", why);
		return 1;
	}
	return 0;
}

/* `cryptsetup luksDump`: what the token says, never its ciphertext
 * (its size and first bytes only). */
void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	char why[512], s[512], prefix[B64_ENCODED_SIZE(DUMP_PREFIX)];
	struct vol_token t;

	if (vol_token_parse(json, &t, why, sizeof(why))) {
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tinvalid:    %s\n",
			   printable(why, s, sizeof(s)));
		return;
	}
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tkey:        %s\n",
		   printable(t.key_arn, s, sizeof(s)));
	if (t.kind == VOL_KEY_AWS)
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tregion:     %s\n",
			   t.region);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tcreated:    %s\n",
		   t.created[0] ? printable(t.created, s, sizeof(s))
				: "(not recorded)");
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tbinding:    %s\n",
		   t.segment_bound ? "volume+segment" : "volume");
	for (size_t i = 0; i < t.n_context; i++)
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tcontext:    %s=%s\n",
			   t.context[i].key,
			   printable(t.context[i].value, s, sizeof(s)));
	b64_encode(t.blob, t.blob_len < DUMP_PREFIX ? t.blob_len : DUMP_PREFIX,
		   prefix);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tciphertext: %zu bytes, %s...\n",
		   t.blob_len, prefix);
	vol_token_free(&t);
}

const char *cryptsetup_token_version(void)
{
	return CMKFS_VERSION;
}
