#pragma once

/*
 * `thou facilitator add NAME | passwd NAME | list | remove NAME`: manage
 * the accounts of facilitators (docs/api.md, Workshops). Returns the exit
 * code: 0 done, 1 a runtime failure, 2 a usage error.
 */
int thou_cli_facilitator(int argc, char **argv);
