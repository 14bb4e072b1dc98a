/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds.h — the AWS credential chain and shared config files, as the AWS
 * SDKs resolve them (internal to kms/).
 *
 * Order: (1) environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN; (2) shared files: AWS_SHARED_CREDENTIALS_FILE (default
 * ~/.aws/credentials, sections "[name]") then AWS_CONFIG_FILE (default
 * ~/.aws/config, sections "[profile name]", "[default]"), for the profile
 * from the options, else AWS_PROFILE, else "default"; (3) container
 * credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (against
 * http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN or ..._TOKEN_FILE as Authorization;
 * (4) EC2 instance metadata, IMDSv2 only (PUT /latest/api/token with a TTL
 * header, then GET .../iam/security-credentials/ and the role), endpoint
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
 * disabled by AWS_EC2_METADATA_DISABLED=true.
 *
 * An explicitly chosen profile that does not exist is an error, not a reason
 * to fall through.  Temporary credentials (from a container or IMDS) are
 * refreshed when they expire within CREDS_REFRESH_AHEAD seconds, so a
 * daemon holding a mount for months keeps working.
 *
 * Thread-safety: a provider may be shared; creds_get locks internally.
 */
#ifndef CMKFS_KMS_CREDS_H
#define CMKFS_KMS_CREDS_H

#include <stddef.h>
#include <stdint.h>

#define CREDS_REFRESH_AHEAD 300 /* seconds before Expiration */

/* One set of credentials; lives in secure memory (creds_release it). */
struct kms_creds {
	char access_key_id[129];
	char secret[257];
	char session_token[4097]; /* "" when none */
	int64_t expiration;	  /* epoch seconds; 0 = long-term */
	char source[160];	  /* where they came from, for messages:
				     "environment", "profile db (~/.aws/...)",
				     "container credentials", "instance
				     profile db-host-role" */
};

struct creds_options {
	const char *profile; /* explicit (--profile); NULL: AWS_PROFILE */
	long timeout_ms;     /* container and IMDS requests; 0 = 1000 */
};

struct creds_provider;

int creds_provider_new(struct creds_provider **out,
		       const struct creds_options *opt);
void creds_provider_free(struct creds_provider *p);

/*
 * Current credentials: a copy in secure memory in *out.  Returns 0;
 * -ENOENT when no source in the chain has any (err says what was tried);
 * -EINVAL for a broken source (explicit profile missing, malformed file or
 * response; err says which); -EIO/-ETIMEDOUT for a container or metadata
 * service that fails.
 */
int creds_get(struct creds_provider *p, struct kms_creds **out, char *err,
	      size_t errlen);
void creds_release(struct kms_creds *c);

/* The effective profile name (explicit, AWS_PROFILE, or "default"). */
const char *creds_profile_name(const struct creds_provider *p);

/*
 * A setting of the effective profile from the shared config file
 * (AWS_CONFIG_FILE, default ~/.aws/config), e.g. "region" or
 * "endpoint_url".  Returns 0 and copies it into out, -ENOENT when absent.
 */
int creds_profile_setting(const struct creds_provider *p, const char *key,
			  char *out, size_t len);

#endif
