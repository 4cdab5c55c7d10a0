" A small Rhai syntax: keywords, strings, comments, numbers. When another Rhai syntax was
" loaded first it wins; Galley's names come from after/syntax/rhai.vim either way.
if exists("b:current_syntax")
  finish
endif

syn keyword rhaiKeyword if else switch do while until loop for in break continue return throw try catch
syn keyword rhaiStorage let const fn private
syn keyword rhaiInclude import export as
syn keyword rhaiBoolean true false
syn keyword rhaiSelf this global
syn keyword rhaiBuiltin print debug type_of is_def_fn is_def_var is_shared Fn call curry eval
syn keyword rhaiTodo TODO FIXME XXX NOTE contained

syn match rhaiNumber "\<\%(0x[0-9A-Fa-f_]\+\|0o[0-7_]\+\|0b[01_]\+\|[0-9][0-9_]*\%(\.[0-9][0-9_]*\)\=\%([eE][+-]\=[0-9_]\+\)\=\)\>"
syn match rhaiFunctionDef "\%(\<fn\s\+\)\@<=\h\w*"
syn match rhaiEscape "\\\%(x\x\{2}\|u\x\{4}\|U\x\{8}\|.\)" contained
syn match rhaiChar "'\%([^'\\]\|\\.\)'"
syn region rhaiString start=+"+ skip=+\\\\\|\\"+ end=+"+ contains=rhaiEscape,@Spell
syn region rhaiString start=+#"+ end=+"#+ contains=@Spell
syn region rhaiInterpolation matchgroup=rhaiInterpolationDelim start="\${" end="}" contained contains=TOP
syn region rhaiTemplate start=+`+ skip=+\\\\\|\\`+ end=+`+ contains=rhaiEscape,rhaiInterpolation,@Spell
syn region rhaiComment start="/\*" end="\*/" contains=rhaiComment,rhaiTodo,@Spell
syn match rhaiComment "//.*$" contains=rhaiTodo,@Spell
syn match rhaiDocComment "///.*$" contains=rhaiTodo,@Spell

hi def link rhaiKeyword Statement
hi def link rhaiStorage StorageClass
hi def link rhaiInclude Include
hi def link rhaiBoolean Boolean
hi def link rhaiSelf Special
hi def link rhaiBuiltin Function
hi def link rhaiTodo Todo
hi def link rhaiNumber Number
hi def link rhaiFunctionDef Function
hi def link rhaiEscape SpecialChar
hi def link rhaiChar Character
hi def link rhaiString String
hi def link rhaiTemplate String
hi def link rhaiInterpolationDelim Delimiter
hi def link rhaiComment Comment
hi def link rhaiDocComment SpecialComment

let b:current_syntax = "rhai"
