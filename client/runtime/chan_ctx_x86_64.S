/*
 * chan_ctx_x86_64.S - goroutine context switch for x86-64 (System V ABI).
 *
 * A saved context is a stack pointer; below the return address the stack
 * holds, from high to low addresses: rbp, rbx, r12, r13, r14, r15, and one
 * 8-byte slot with MXCSR (low 4 bytes) and the x87 control word (next 2).
 * Those control words are callee-saved in the ABI: a goroutine that changes
 * the rounding mode must not change it for the next goroutine on its thread.
 * chani_ctx_make (chan_ctx.c) builds the same picture for a fresh context,
 * with chani_ctx_entry as the return address, fn in r12 and arg in r13.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifdef __CET__
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text
    .globl  chani_ctx_switch
    .hidden chani_ctx_switch
    .type   chani_ctx_switch, @function
    .p2align 4
chani_ctx_switch:                /* rdi = from, rsi = to */
    .cfi_startproc
    ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   chani_ctx_switch, .-chani_ctx_switch

/* The first instruction a fresh context runs (reached by chani_ctx_switch's
 * ret).  The stack is 16-byte aligned here, as a call requires.  There is
 * no caller to unwind to: say so, for debuggers. */
    .globl  chani_ctx_entry
    .hidden chani_ctx_entry
    .type   chani_ctx_entry, @function
    .p2align 4
chani_ctx_entry:
    .cfi_startproc
    .cfi_undefined rip
    ENDBR
    movq    %r13, %rdi
    callq   *%r12
    ud2                         /* fn must not return */
    .cfi_endproc
    .size   chani_ctx_entry, .-chani_ctx_entry

    .section .note.GNU-stack,"",@progbits
