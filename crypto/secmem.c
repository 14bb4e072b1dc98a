/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secmem.c — memory for secrets: locked, kept out of core dumps and children,
 * fenced by guard pages, and wiped before it is returned to the kernel.
 *
 * Each allocation is a private anonymous mapping of its own:
 *
 *     [guard page][header | user bytes ... ][guard page]
 *
 * One mapping per secret is wasteful for many small objects, but cmkfs holds
 * a handful of keys and buffers at a time, allocated outside the data path,
 * and a mapping of its own lets us give each secret exactly the protections
 * it needs and lets an outside scanner (the memory test) find every place a
 * secret may legitimately be: the mappings named "cmkfs-secmem".
 *
 * Not a general-purpose allocator: no pools, no small-object packing.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "crypto.h"

/* Linux 5.17 names anonymous mappings; Debian 12's headers predate it. */
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#define SECMEM_MAGIC 0x636d6b66736d656dULL /* "cmkfsmem" */
#define SECMEM_MAX   ((size_t)1 << 30)

struct secmem_hdr {
	uint64_t magic;
	size_t map_len;	 /* whole mapping, guard pages included */
	size_t user_len; /* bytes usable after the header */
	bool locked;
	alignas(64) unsigned char data[];
};

static atomic_size_t live_allocs, live_bytes, lock_failures;

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static struct secmem_hdr *hdr_of(const void *p)
{
	struct secmem_hdr *h =
		(struct secmem_hdr *)((uintptr_t)p -
				      offsetof(struct secmem_hdr, data));

	/* A pointer we did not hand out is a programming error that would
	 * unmap someone else's memory: stop here rather than corrupt. */
	if (h->magic != SECMEM_MAGIC)
		__builtin_trap();
	return h;
}

void secmem_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

bool secmem_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void *secmem_alloc(size_t n)
{
	size_t ps = page_size(), body, map_len;
	struct secmem_hdr *h;
	unsigned char *base;

	if (n == 0 || n > SECMEM_MAX) {
		errno = EINVAL;
		return NULL;
	}
	body = (sizeof(*h) + n + ps - 1) & ~(ps - 1);
	map_len = body + 2 * ps;
	base = mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base + ps, body, PROT_READ | PROT_WRITE)) {
		int e = errno;

		munmap(base, map_len);
		errno = e;
		return NULL;
	}
	h = (struct secmem_hdr *)(base + ps);
	/* Best effort each: older kernels lack WIPEONFORK or VMA names, and
	 * neither is worth failing an allocation for.  DONTDUMP is in every
	 * kernel we support. */
	(void)madvise(h, body, MADV_DONTDUMP);
	(void)madvise(h, body, MADV_WIPEONFORK);
	(void)prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)base,
		    map_len, (unsigned long)"cmkfs-secmem");
	h->magic = SECMEM_MAGIC;
	h->map_len = map_len;
	h->user_len = body - sizeof(*h);
	h->locked = mlock(h, body) == 0;
	if (!h->locked)
		atomic_fetch_add(&lock_failures, 1);
	atomic_fetch_add(&live_allocs, 1);
	atomic_fetch_add(&live_bytes, body);
	return h->data;
}

void secmem_free(void *p)
{
	size_t ps = page_size(), body;
	struct secmem_hdr *h;

	if (!p)
		return;
	h = hdr_of(p);
	body = h->map_len - 2 * ps;
	atomic_fetch_sub(&live_allocs, 1);
	atomic_fetch_sub(&live_bytes, body);
	/* Wipe everything, header included, while the pages are still locked:
	 * once unlocked they could be swapped out with the secret in them. */
	{
		size_t map_len = h->map_len;
		bool locked = h->locked;

		explicit_bzero(h, body);
		if (locked)
			munlock(h, body);
		munmap((unsigned char *)h - ps, map_len);
	}
}

size_t secmem_size(const void *p)
{
	return hdr_of(p)->user_len;
}

void *secmem_realloc(void *p, size_t n)
{
	void *q;

	if (!p)
		return secmem_alloc(n);
	if (n && n <= secmem_size(p))
		return p;
	q = secmem_alloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, secmem_size(p));
	secmem_free(p);
	return q;
}

void secmem_stats(struct secmem_stats *st)
{
	st->live_allocs = atomic_load(&live_allocs);
	st->live_bytes = atomic_load(&live_bytes);
	st->lock_failures = atomic_load(&lock_failures);
}

/* ---- wiping frees for other libraries' heaps ---------------------------- */

void secmem_heap_free(void *p)
{
	if (!p)
		return;
	secmem_wipe(p, malloc_usable_size(p));
	free(p);
}

void *secmem_heap_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);
	if (!n) {
		secmem_heap_free(p);
		return NULL;
	}
	/* Never realloc(): growing may move the block and leave the old one
	 * unwiped on the free list. */
	old = malloc_usable_size(p);
	if (n <= old)
		return p;
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	secmem_heap_free(p);
	return q;
}

/* ---- the stack ---------------------------------------------------------- */

/* noinline: the buffer must be a frame of its own, below the caller's. */
__attribute__((noinline)) void secmem_wipe_stack(void)
{
	uint8_t dead[SECMEM_STACK_WIPE];

	secmem_wipe(dead, sizeof(dead));
	/* Keep the wipe from being a tail call that reuses no stack. */
	__asm__ __volatile__("" : : "r"(dead) : "memory");
}
