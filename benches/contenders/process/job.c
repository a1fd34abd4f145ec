/* The cold-start job as a program, for the "process per execution" contender
 * (benches/benches/contenders/process.rs): read the JSON input from stdin, write one
 * log line to stderr, write the JSON back to stdout. Built static by benches/run.sh
 * (`cc -O2 -static`), so the sandbox needs nothing but this file. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    static char buffer[1 << 16];
    size_t length = 0;
    for (;;) {
        ssize_t n = read(0, buffer + length, sizeof buffer - length);
        if (n < 0) return 1;
        if (n == 0) break;
        length += (size_t)n;
        if (length == sizeof buffer) return 2;
    }
    fprintf(stderr, "{\"level\":\"info\",\"message\":\"echo\",\"fields\":{\"bytes\":%zu}}\n", length);
    size_t written = 0;
    while (written < length) {
        ssize_t n = write(1, buffer + written, length - written);
        if (n <= 0) return 3;
        written += (size_t)n;
    }
    return 0;
}
