/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pin-token.c — a token plugin for tests only, of type "cmkfs-test-pin":
 * it always wants a PIN (-ENOANO without one) and never opens anything
 * (-ENOENT with one).  Next to an aws-kms token that fails, it makes the
 * cryptsetup CLI ask for a PIN and walk the tokens again with it, so that
 * the aws-kms plugin's open_pin is reached the way a user reaches it.
 */
#include <errno.h>
#include <stddef.h>

struct crypt_device;

const char *cryptsetup_token_version(void);
int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
			  size_t *buffer_len, void *usrptr);
int cryptsetup_token_open_pin(struct crypt_device *cd, int token,
			      const char *pin, size_t pin_size, char **buffer,
			      size_t *buffer_len, void *usrptr);
void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
void cryptsetup_token_dump(struct crypt_device *cd, const char *json);

const char *cryptsetup_token_version(void)
{
	return "test";
}

int cryptsetup_token_open_pin(struct crypt_device *cd, int token,
			      const char *pin, size_t pin_size, char **buffer,
			      size_t *buffer_len, void *usrptr)
{
	(void)cd, (void)token, (void)pin_size, (void)buffer;
	(void)buffer_len, (void)usrptr;
	return pin ? -ENOENT : -ENOANO;
}

int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
			  size_t *buffer_len, void *usrptr)
{
	return cryptsetup_token_open_pin(cd, token, NULL, 0, buffer, buffer_len,
					 usrptr);
}

void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	(void)buffer, (void)buffer_len;
}

int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	(void)cd, (void)json;
	return 0;
}

void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	(void)cd, (void)json;
}
