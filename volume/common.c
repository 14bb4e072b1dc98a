/* SPDX-License-Identifier: Apache-2.0 */
/* common.c — helpers the operations of volume/ share (internal.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "luks2.h"

int vol_fail(struct vol_error *e, int r, bool with_errno, const char *fmt, ...)
{
	va_list ap;

	e->what = VOL_FAIL_MESSAGE;
	e->with_errno = with_errno;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return r;
}

int vol_open_info(const char *path, unsigned flags, struct luks2_vol **v,
		  struct luks2_info *info, struct vol_error *e)
{
	char err[512];
	int r;

	r = luks2_open_flags(path, flags, v, err, sizeof(err));
	if (r)
		return vol_fail(e, r, false, "%s", err);
	if (luks2_info(*v, info)) {
		luks2_close(*v);
		*v = NULL;
		return vol_fail(e, -EIO, true, "cannot read the header of %s",
				path);
	}
	return 0;
}

int vol_check_new_key(struct vol_kms *k, const char *arn, const char *what,
		      const char *volume, struct vol_error *e)
{
	int r = vol_check_key(k, arn, &e->key);

	if (r) {
		e->what = VOL_FAIL_KEY_UNFIT;
		snprintf(e->key_arn, sizeof(e->key_arn), "%s", arn);
		snprintf(e->message, sizeof(e->message), "%s %s", what, volume);
	}
	return r;
}

int vol_new_secret(struct vol_kms *k, const char *arn, bool check,
		   const struct luks2_info *info, const char *what,
		   const char *volume, uint8_t **secret, char **token,
		   struct vol_error *e)
{
	int r = check ? vol_check_new_key(k, arn, what, volume, e) : 0;
	struct vol_binding b;

	if (r)
		return r;
	vol_binding_of(info, &b);
	r = vol_secret_new(k, arn, &b, secret, token, &e->kms);
	if (r) {
		e->what = VOL_FAIL_KMS;
		snprintf(e->message, sizeof(e->message),
			 "%s %s: no data key from %s", what, volume, arn);
	}
	return r;
}

int vol_keyslot_with_token(struct luks2_vol *v, const struct crypto_key *vk,
			   const uint8_t *secret, const char *token_json,
			   int *slot, int *id, char *err, size_t errlen)
{
	char ignored[512];
	int r;

	r = luks2_keyslot_add(v, vk, secret, VOL_SECRET_BYTES, slot, err,
			      errlen);
	if (r)
		return r;
	r = luks2_token_add(v, token_json, *slot, id, err, errlen);
	if (r) /* no keyslot without its token */
		luks2_keyslot_destroy(v, *slot, ignored, sizeof(ignored));
	return r;
}
