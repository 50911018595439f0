#pragma once

/*
 * The researcher's commands (docs/research.md): `thou study keygen|add|list|
 * remove` and `thou export`. main() dispatches here with the arguments after
 * the command's name. Each returns an exit code: 0 success, 1 a runtime
 * failure, 2 a usage or input error.
 */

/** thou study SUBCOMMAND ... */
int thou_research_study_main(int argc, char **argv);

/** thou export --study NAME --key FILE [--format csv|jsonl] [--out PATH] [--force] */
int thou_research_export_main(int argc, char **argv);
