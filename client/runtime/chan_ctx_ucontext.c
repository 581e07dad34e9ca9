/*
 * chan_ctx_ucontext.c - the portable goroutine context switch, on
 * getcontext/makecontext/swapcontext (used where there is no assembly
 * version, or with configure --with-context=ucontext).
 *
 * makecontext passes only int arguments, so the fn and arg pointers travel
 * through a small record split into two 32-bit halves.  swapcontext also
 * saves and restores the signal mask (a system call each way), which makes
 * this several times slower than the assembly switches; the mask given to
 * a fresh context is the creating thread's, and the scheduler creates
 * contexts on its worker threads, whose masks are all the same.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "runtime/chan_ctx.h"

struct ctx_start {
    void (*fn)(void *);
    void *arg;
};

static void ctx_trampoline(unsigned int hi, unsigned int lo)
{
    struct ctx_start *st = (struct ctx_start *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    st->fn(st->arg);
    abort();   /* fn must not return */
}

void chani_ctx_make(chan_ctx_t *c, void *lo, size_t size,
                    void (*fn)(void *), void *arg)
{
    /* The start record lives at the top of the new stack itself, so it
     * needs no allocation and is gone when the stack is reused. */
    uintptr_t top = ((uintptr_t)lo + size - sizeof(struct ctx_start)) & ~(uintptr_t)15;
    struct ctx_start *st = (struct ctx_start *)top;
    st->fn = fn;
    st->arg = arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = top - (uintptr_t)lo;
    c->uc.uc_link = NULL;
    uint64_t p = (uint64_t)(uintptr_t)st;
    makecontext(&c->uc, (void (*)(void))ctx_trampoline, 2,
                (unsigned int)(p >> 32), (unsigned int)(p & 0xffffffffu));
}

void chani_ctx_switch(chan_ctx_t *from, chan_ctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}
