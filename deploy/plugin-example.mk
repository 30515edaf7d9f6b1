# Makefile -- build the example drover plugin against the installed header:
#   make            -> libexample.so
# then point a job type at it (handler: plugin, library: /path/to/
# libexample.so, symbol: example_async or example_blocking; see the
# comment at the top of example.c and drover.yaml(5)).
CC ?= cc
CFLAGS ?= -O2 -g -Wall -Wextra

libexample.so: example.c
	$(CC) -std=c11 -D_GNU_SOURCE $(CFLAGS) -I@INCLUDEDIR@ -fPIC -shared -Wl,-z,defs \
	  -o $@ example.c

clean:
	rm -f libexample.so
