/*
 * chan_ctx.h - saving and restoring a goroutine's machine context.
 *
 * A context is what a suspended coroutine needs to resume: its stack
 * pointer and the registers the C ABI says a callee must preserve.  The
 * assembly versions (chan_ctx_x86_64.S, chan_ctx_aarch64.S) push those
 * registers on the current stack, store the stack pointer in `from`, load
 * `to`'s stack pointer and pop its registers: a switch is a function call
 * that returns on another stack.  Caller-saved registers need no saving
 * because the compiler already assumes a call clobbers them.  The portable
 * fallback (chan_ctx_ucontext.c) does the same with swapcontext(3), which
 * is slower (it also saves the signal mask, a system call).
 *
 * chani_ctx_make() prepares a context that, on its first switch, calls
 * fn(arg) on the given stack.  fn must never return: a goroutine ends by
 * switching away for good.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAN_CTX_H
#define CHAN_CTX_H

#include <stddef.h>

#ifdef CHAN_CTX_UCONTEXT
#include <ucontext.h>
typedef struct chan_ctx {
    ucontext_t uc;
} chan_ctx_t;
#else
typedef struct chan_ctx {
    void *sp;   /* the saved stack pointer; registers live on that stack */
} chan_ctx_t;
#endif

/* chani_ctx_switch - save the running context in *from and resume *to.
 * Returns when something switches back to *from. */
void chani_ctx_switch(chan_ctx_t *from, chan_ctx_t *to);

/* chani_ctx_make - make *c start fn(arg) on the stack [lo, lo + size).
 * The floating-point control state (MXCSR and x87 control word, FPCR) is
 * the calling thread's (with ucontext, so is the signal mask): a context
 * starts in the environment of its creator, as a pthread_create()d thread
 * does. */
void chani_ctx_make(chan_ctx_t *c, void *lo, size_t size,
                    void (*fn)(void *), void *arg);

#endif /* CHAN_CTX_H */
