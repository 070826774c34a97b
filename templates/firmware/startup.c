/* startup.c: the smallest start-up a Cortex-M4F image needs to run an xnorgen library
 * (shipped in templates/firmware/; copy it into your own firmware and adapt it).
 *
 * 1. The vector table: the initial stack pointer and the reset handler, at address 0 (the
 *    linker script puts .vectors first). Every other exception parks in Default_Handler.
 * 2. Reset_Handler turns the FPU on before any float instruction runs: the library is built
 *    -mfloat-abi=hard, and on a Cortex-M4F the FPU is off after reset (CPACR, CP10 and CP11
 *    full access), so the first VLDR would fault.
 * 3. It copies .data from its load address (flash) to RAM and zeroes .bss, as the C standard
 *    requires before main. (Under qemu -kernel the ELF's .data is already in place; on a
 *    real part the copy is what puts it there.)
 * 4. With semihosting (qemu -semihosting, or a debugger), newlib's rdimon library routes
 *    stdio to the host: initialise_monitor_handles() opens stdin/stdout/stderr. Define
 *    XG_NO_SEMIHOSTING to leave it out on a board without a debugger attached.
 * 5. main's return value ends the program (semihosting exit; else a breakpoint loop).
 * Newlib's start files are not linked (-nostartfiles), so the empty _init/_fini its
 * __libc_init_array expects are defined here. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;   /* from the linker script */
int main(void);
#ifndef XG_NO_SEMIHOSTING
void initialise_monitor_handles(void);
#endif

void Reset_Handler(void)
{
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;    /* CPACR: CP10 and CP11 full access */
    __asm volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
#ifndef XG_NO_SEMIHOSTING
    initialise_monitor_handles();
#endif
    exit(main());
}

void Default_Handler(void)
{
    for (;;)
        __asm volatile("bkpt #0");
}

void _init(void) {}
void _fini(void) {}

/* The core's 16 system exceptions; a part's own interrupts would follow. */
__attribute__((section(".vectors"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
