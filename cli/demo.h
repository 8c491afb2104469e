/*
 * `ckptctl demo`: a two-minute tour for a newcomer -- start a counter,
 * checkpoint it, watch it die, restore it, watch it go on counting.
 */
#ifndef CKPT_CLI_DEMO_H
#define CKPT_CLI_DEMO_H

/* argv[0] is "demo".  Returns the process exit code: 0 when the restored
 * counter went on from where it was dumped, 1 otherwise. */
int cmd_demo(int argc, char **argv);

#endif
