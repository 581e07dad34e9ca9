/*
 * chan_ctx_aarch64.S - goroutine context switch for AArch64 (AAPCS64).
 *
 * A saved context is a stack pointer to a 176-byte frame holding the
 * callee-saved registers: x19-x28, x29 (frame pointer), x30 (link register,
 * where the switch returns to), the low halves d8-d15 of v8-v15, and FPCR
 * (rounding mode and traps, callee-saved in practice: a goroutine must not
 * change them for the next one on its thread).  176 keeps sp 16-aligned.
 * A fresh context (built by chani_ctx_make in C) has x19 = fn, x20 = arg and
 * x30 = chani_ctx_entry.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
    .text
    .globl  chani_ctx_switch
    .hidden chani_ctx_switch
    .type   chani_ctx_switch, %function
    .p2align 4
chani_ctx_switch:                /* x0 = from, x1 = to */
    .cfi_startproc
    hint    #34                 /* bti c */
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    ret
    .cfi_endproc
    .size   chani_ctx_switch, .-chani_ctx_switch

/* The first instruction of a fresh context (chani_ctx_switch returns here
 * through x30).  Nothing to unwind to above it. */
    .globl  chani_ctx_entry
    .hidden chani_ctx_entry
    .type   chani_ctx_entry, %function
    .p2align 4
chani_ctx_entry:
    .cfi_startproc
    .cfi_undefined x30
    hint    #34                 /* bti c */
    mov     x0, x20
    blr     x19
    brk     #0                  /* fn must not return */
    .cfi_endproc
    .size   chani_ctx_entry, .-chani_ctx_entry

    .section .note.GNU-stack,"",%progbits
