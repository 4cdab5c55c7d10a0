" Rhai recipes: comments, and `:make` runs `galley check` on the buffer (compiler/galley.vim).
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

setlocal commentstring=//\ %s
setlocal comments=s1:/*,mb:*,ex:*/,:///,://
setlocal suffixesadd=.rhai
compiler galley

let b:undo_ftplugin = "setlocal commentstring< comments< suffixesadd< makeprg< errorformat<"
