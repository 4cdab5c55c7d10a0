" Galley recipes are Rhai scripts.
autocmd BufRead,BufNewFile *.rhai setfiletype rhai
