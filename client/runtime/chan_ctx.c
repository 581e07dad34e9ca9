/*
 * chan_ctx.c - building the first frame of a fresh context for the
 * assembly switches (chan_ctx_x86_64.S, chan_ctx_aarch64.S).
 *
 * chani_ctx_switch resumes a context by popping its saved registers and
 * returning; a fresh context is therefore a stack whose top looks exactly
 * like one saved by chani_ctx_switch, with chani_ctx_entry as the return
 * address and fn/arg in two callee-saved registers that chani_ctx_entry
 * moves into place.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "runtime/chan_ctx.h"

void chani_ctx_entry(void);   /* in the .S file: calls fn(arg) */

#if defined(__x86_64__)

/* Saved frame, low to high: control words, r15, r14, r13, r12, rbx, rbp,
 * return address.  After the ret into chani_ctx_entry the stack pointer must
 * be 16-byte aligned so that its call into fn sees the ABI's alignment. */
void chani_ctx_make(chan_ctx_t *c, void *lo, size_t size,
                    void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16 - 8 * 8);   /* 16 zero bytes above */
    memset(sp, 0, 8 * 8 + 16);
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    sp[0] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    sp[3] = (uint64_t)(uintptr_t)arg;   /* r13 */
    sp[4] = (uint64_t)(uintptr_t)fn;    /* r12 */
    sp[7] = (uint64_t)(uintptr_t)chani_ctx_entry;
    c->sp = sp;
}

#elif defined(__aarch64__)

/* Saved frame: x19..x28 at 0..72, x29/x30 at 80/88, d8..d15 at 96..152,
 * FPCR at 160; 176 bytes in all. */
void chani_ctx_make(chan_ctx_t *c, void *lo, size_t size,
                    void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16 - 176);
    memset(sp, 0, 176 + 16);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[0] = (uint64_t)(uintptr_t)fn;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;             /* x20 */
    sp[11] = (uint64_t)(uintptr_t)chani_ctx_entry; /* x30 */
    sp[20] = fpcr;
    c->sp = sp;
}

#else
#error "no assembly context switch for this CPU: configure --with-context=ucontext"
#endif
