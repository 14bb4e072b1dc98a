/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c — `cmkfs status`: what a volume is, which keys open it, whether
 * it is being reencrypted and where it is mounted, as text or JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "crypto.h"
#include "luks2.h"
#include "volume.h"

static void add(json_object *o, const char *name, json_object *v)
{
	json_object_object_add(o, name, v);
}

/*
 * Where a reencryption stands.  The daemon of a mounted volume knows (its
 * job running, paused, done, or stopped with an error); else the header
 * does: paused (stopped between blocks: resumable), crashed (cut off:
 * resume recovers it first) or none.
 */
struct reenc_view {
	const char *state;
	uint64_t done, total, rate, max_rate;
	const char *error; /* why a job stopped, or NULL */
	bool online;	   /* from the daemon */
};

static void reenc_view(const struct vol_status *st, const struct fsd_state *m,
		       struct reenc_view *v)
{
	static const char *const states[] = {
		[VOL_REENC_NONE] = "none",
		[VOL_REENC_IN_PROGRESS] = "paused",
		[VOL_REENC_CRASHED] = "crashed",
		[VOL_REENC_END_CUT_OFF] = "crashed",
	};

	memset(v, 0, sizeof(*v));
	v->state = states[st->reencryption];
	v->done = st->reencrypt_done;
	v->total = st->reencrypt_total;
	if (!m || !m->have_stats || !m->reencrypt[0] ||
	    !strcmp(m->reencrypt, "none"))
		return;
	v->online = true;
	v->max_rate = m->reencrypt_max_rate;
	/* "done" is the daemon's last job: a newer reencryption the daemon
	 * has not started is the header's to tell. */
	if (!strcmp(m->reencrypt, "running") ||
	    !strcmp(m->reencrypt, "paused") ||
	    (!strcmp(m->reencrypt, "done") &&
	     st->reencryption == VOL_REENC_NONE)) {
		v->state = m->reencrypt;
		v->done = m->reencrypt_done;
		v->total = m->reencrypt_total;
		v->rate =
			strcmp(m->reencrypt, "paused") ? m->reencrypt_rate : 0;
	} else if (m->reencrypt_error[0]) {
		v->error = m->reencrypt_error;
	}
}

static json_object *reencrypt_json(const struct reenc_view *v)
{
	json_object *o = json_object_new_object();

	add(o, "state", json_object_new_string(v->state));
	add(o, "done_bytes", json_object_new_int64((int64_t)v->done));
	add(o, "total_bytes", json_object_new_int64((int64_t)v->total));
	add(o, "rate", json_object_new_int64((int64_t)v->rate));
	if (v->online) {
		add(o, "max_rate", json_object_new_int64((int64_t)v->max_rate));
		add(o, "error",
		    v->error ? json_object_new_string(v->error) : NULL);
	}
	return o;
}

static json_object *status_json(const char *volume, const struct vol_status *st,
				const struct reenc_view *rv)
{
	const struct luks2_info *i = &st->info;
	json_object *o = json_object_new_object();

	add(o, "volume", json_object_new_string(volume));
	add(o, "uuid", json_object_new_string(i->uuid));
	add(o, "label", json_object_new_string(i->label));
	add(o, "cipher", json_object_new_string(i->cipher));
	add(o, "encrypted",
	    json_object_new_boolean(strncmp(i->cipher, "cipher_null", 11) !=
				    0));
	add(o, "key_bits", json_object_new_int((int)i->key_bytes * 8));
	add(o, "sector_size", json_object_new_int((int)i->sector_size));
	add(o, "data_offset", json_object_new_int64((int64_t)i->data_offset));
	add(o, "data_size", json_object_new_int64((int64_t)i->data_size));
	add(o, "unused_tail", json_object_new_int64((int64_t)i->data_tail));
	add(o, "blank", json_object_new_boolean(i->blank_token >= 0));
	add(o, "reencryption",
	    json_object_new_string(vol_reencryption_name(st->reencryption)));
	add(o, "reencrypt", reencrypt_json(rv));
	add(o, "allow_list",
	    json_object_new_string(st->allowed == VOL_ALLOWED ? "pass"
				   : st->allowed == VOL_ALLOWED_INSECURE
					   ? "insecure-only"
					   : "refused"));
	add(o, "refused",
	    st->refused[0] ? json_object_new_string(st->refused) : NULL);
	return o;
}

static json_object *slot_json(const struct vol_status_slot *s)
{
	json_object *o = json_object_new_object();

	add(o, "keyslot", json_object_new_int(s->keyslot));
	add(o, "kms_bound", json_object_new_boolean(s->token >= 0));
	if (s->token >= 0) {
		add(o, "token", json_object_new_int(s->token));
		add(o, "key_arn", json_object_new_string(s->key_arn));
		add(o, "kind",
		    json_object_new_string(vol_key_kind_of(s->key_arn) ==
							   VOL_KEY_KMIP
						   ? "kmip"
						   : "aws-kms"));
		add(o, "region", json_object_new_string(s->region));
		add(o, "created", json_object_new_string(s->created));
		add(o, "binding",
		    json_object_new_string(s->segment_bound ? "volume+segment"
							    : "volume"));
	}
	return o;
}

static void status_text(const char *volume, const struct vol_status *st,
			const struct reenc_view *rv)
{
	const struct luks2_info *i = &st->info;
	char hs[32];

	cli_human_size(i->data_size, hs, sizeof(hs));
	printf("%s: cmkfs volume (LUKS2)\n"
	       "  uuid         %s\n",
	       volume, i->uuid);
	if (i->label[0])
		printf("  label        %s\n", i->label);
	if (!strncmp(i->cipher, "cipher_null", 11))
		printf("  cipher       %s: NOT ENCRYPTED (benchmark volume)\n",
		       i->cipher);
	else
		printf("  cipher       %s, %u-bit key\n", i->cipher,
		       i->key_bytes * 8);
	printf("  sector size  %u\n"
	       "  data         %s at offset %llu (%llu bytes)\n",
	       i->sector_size, hs, (unsigned long long)i->data_offset,
	       (unsigned long long)i->data_size);
	if (i->data_tail)
		printf("  unused       the last %llu bytes of the file: not a "
		       "whole sector\n",
		       (unsigned long long)i->data_tail);
	if (i->blank_token >= 0)
		printf("  blank        never written: its first mount makes the "
		       "filesystem\n");
	if (st->allowed == VOL_ALLOWED_INSECURE)
		printf("  allow-list   only with --insecure (NOT ENCRYPTED)\n");
	else if (st->allowed == VOL_REFUSED)
		printf("  HEADER REFUSED: cmkfs will not unlock, serve or change "
		       "it: %s\n",
		       st->refused);
	if (rv->total) {
		char done[32], all[32];

		cli_human_size(rv->done, done, sizeof(done));
		cli_human_size(rv->total, all, sizeof(all));
		printf("  reencrypted  %s of %s (%u%%) under the new key\n",
		       done, all, (unsigned)(rv->done * 100 / rv->total));
	}
	if (rv->online) {
		char rate[32], max[32];

		cli_human_size(rv->rate, rate, sizeof(rate));
		cli_human_size(rv->max_rate, max, sizeof(max));
		printf("  reencrypt    %s online, %s/s (limit %s/s)%s%s\n",
		       rv->state, rate, rv->max_rate ? max : "none",
		       rv->error ? ": " : "", rv->error ? rv->error : "");
		if (strcmp(rv->state, "running") && strcmp(rv->state, "done"))
			printf("  REENCRYPTION STOPPED on a mounted volume: "
			       "`cmkfs reencrypt --resume %s` continues it\n",
			       volume);
		return;
	}
	switch (st->reencryption) {
	case VOL_REENC_NONE:
		break;
	case VOL_REENC_END_CUT_OFF:
		printf("  REENCRYPTION END CUT OFF: finish it with `cmkfs "
		       "reencrypt --resume %s`\n",
		       volume);
		break;
	case VOL_REENC_IN_PROGRESS:
		printf("  REENCRYPTION IN PROGRESS: the volume cannot be "
		       "unlocked until `cmkfs reencrypt --resume %s` finishes "
		       "it\n",
		       volume);
		break;
	case VOL_REENC_CRASHED:
		printf("  REENCRYPTION INTERRUPTED by a crash in the middle of a "
		       "block: `cmkfs reencrypt --resume %s` recovers it and "
		       "finishes\n",
		       volume);
		break;
	}
}

static void slot_text(const struct vol_status_slot *s)
{
	if (s->token >= 0)
		printf("  keyslot %-4d bound to %s\n"
		       "               (%s%s, token %d, created %s;\n"
		       "               binding %s)\n",
		       s->keyslot, s->key_arn,
		       s->region[0] ? "region " : "KMIP", s->region, s->token,
		       s->created[0] ? s->created : "?",
		       s->segment_bound
			       ? "volume+segment"
			       : "volume only: `cmkfs rotate --rewrap` "
				 "binds the data segment too");
	else
		printf("  keyslot %-4d NOT BOUND to a KMS key: whoever has its "
		       "passphrase can open this volume without KMS; remove it "
		       "(cryptsetup luksKillSlot)\n",
		       s->keyslot);
}

/* --check-key for the key of slot s: 0 or the exit code. */
static int check_slot_key(const struct vol_status_slot *s,
			  const struct kms_options *ko, bool json)
{
	struct kms_options tko = *ko;
	struct vol_kms *k;
	int r;

	if (!tko.region && s->region[0])
		tko.region = s->region;
	r = cli_key_service(&tko, s->key_arn, &k);
	if (!r) {
		r = cli_check_key(k, s->key_arn, json, NULL);
		vol_kms_free(k);
	}
	if (r && !json)
		printf("  key check    FAILED for %s (above)\n", s->key_arn);
	return r;
}

/* --all: every mount of this host, as 'status' shows a mount. */
struct all {
	json_object *list; /* NULL: text */
	unsigned n;
};

static int all_one(const struct fsd_state *st, void *arg)
{
	struct all *a = arg;
	json_object *o;

	if (!a->list) {
		printf("%s%s: mounted cmkfs volume\n"
		       "  uuid         %s\n",
		       a->n ? "\n" : "", st->volume, st->uuid);
		cli_status_mount(st->uuid, NULL);
	} else {
		o = json_object_new_object();
		add(o, "volume", json_object_new_string(st->volume));
		add(o, "uuid", json_object_new_string(st->uuid));
		cli_status_mount(st->uuid, o);
		json_object_array_add(a->list, o);
	}
	a->n++;
	return 0;
}

static int status_all(bool json)
{
	struct all a = { json ? json_object_new_array() : NULL, 0 };
	int r = fsd_state_each(all_one, &a);

	if (r) {
		json_object_put(a.list);
		return cli_error(r, "cannot list the mounts in %s",
				 fsd_runtime_root());
	}
	if (json)
		printf("%s\n",
		       json_object_to_json_string_ext(
			       a.list, JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (!a.n)
		printf("no cmkfs volume is mounted\n");
	json_object_put(a.list);
	return EXIT_OK;
}

static int run_status(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "check-key", no_argument, NULL, 'c' },
		{ "all", no_argument, NULL, 'a' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	struct reenc_view rv;
	struct fsd_state ms;
	struct vol_status st;
	struct vol_error e;
	bool json = false, check = false, all = false;
	json_object *o = NULL, *slots = NULL;
	int c, rc, failed = 0;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'j')
			json = true;
		else if (c == 'c')
			check = true;
		else if (c == 'a')
			all = true;
	}
	if (rc >= 0)
		return rc;
	if (all && (check || argc != optind))
		return cli_usage_error(cmd, "--all takes no VOLUME and no "
					    "--check-key");
	if (all)
		return status_all(json);
	if (argc - optind != 1)
		return cli_usage_error(cmd, "status takes one VOLUME");
	rc = vol_status(argv[optind], &st, &e);
	if (rc)
		return cli_volume_error(argv[optind], rc, &e);
	reenc_view(&st, fsd_state_by_uuid(st.info.uuid, &ms) ? NULL : &ms, &rv);
	if (json) {
		o = status_json(argv[optind], &st, &rv);
		slots = json_object_new_array();
		add(o, "keyslots", slots);
	} else {
		status_text(argv[optind], &st, &rv);
	}
	for (unsigned i = 0; i < st.n_slots; i++) {
		const struct vol_status_slot *s = &st.slots[i];

		if (json)
			json_object_array_add(slots, slot_json(s));
		else
			slot_text(s);
		if (s->token >= 0 && check) {
			int r = check_slot_key(s, &ko, json);

			if (r && !failed)
				failed = r; /* the first failure decides */
		}
	}
	cli_status_mount(st.info.uuid, o);
	if (json) {
		add(o, "only_kms_keyslots",
		    json_object_new_boolean(st.only_kms_keyslots));
		printf("%s\n",
		       json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (!st.n_slots) {
		printf("  keyslots     none: this volume cannot be opened\n");
	}
	return failed;
}

const struct cli_cmd cli_cmd_status = {
	"status",
	"show a volume: format, keyslots, the KMS keys they need",
	"usage: cmkfs status VOLUME [--json] [--check-key [KMS OPTIONS]]\n"
	"       cmkfs status --all [--json]\n"
	"\n"
	"Show the volume's UUID, cipher, sector size, data offset and size, "
	"and each\n"
	"keyslot with the KMS key it is bound to.  A keyslot no aws-kms token "
	"covers\n"
	"is flagged: it would let a passphrase open the volume without KMS.  "
	"No KMS\n"
	"request is made unless --check-key, which checks each key as "
	"'cmkfs\n"
	"check-key' does.\n"
	"\n"
	"  --all               every volume mounted on this host (its mount, "
	"daemon,\n"
	"                      I/O, transport and revocation state), from the "
	"mounts'\n"
	"                      state in /run/cmkfs; no header is read\n"
	"\n" CLI_KMS_USAGE,
	run_status,
};
