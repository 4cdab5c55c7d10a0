" Compiler: `galley check --format gnu`, whose lines are `file:line:col: severity: message [code]`
" (severity `error` or `warning`), into the quickfix list. `:make` checks the current buffer.
if exists("current_compiler")
  finish
endif
let current_compiler = "galley"

if exists(":CompilerSet") != 2
  command -nargs=* CompilerSet setlocal <args>
endif

CompilerSet makeprg=galley\ check\ --format\ gnu\ %:S
CompilerSet errorformat=%f:%l:%c:\ %trror:\ %m,%f:%l:%c:\ %tarning:\ %m,%-G%.%#
