/* ttyspeed.h - read a tty's output speed in baud (0 on error or B0). */
#ifndef ESIM_TTYSPEED_H
#define ESIM_TTYSPEED_H

#include <stdint.h>

uint32_t esim_tty_out_speed(int fd);

#endif
