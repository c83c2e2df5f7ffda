/** The pages' stylesheet: system fonts, light and dark, no external assets. */
export const STYLES = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --surface: #ffffff; --text: #172b4d; --muted: #5e6c84; --border: #dfe1e6;
  --accent: #0c66e4; --accent-text: #ffffff; --accent-soft: #e9f2ff;
  --danger: #c9372c; --danger-soft: #ffeceb; --ok: #216e4e; --ok-soft: #dcfff1;
  --warn: #7f5f01; --warn-soft: #fff7d6; --code-bg: #f1f2f4; --focus: #388bff;
  --read: #0055cc; --read-soft: #e9f2ff; --write: #a54800; --write-soft: #fff3eb; --on-danger: #ffffff;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #1d2125; --surface: #22272b; --text: #dee4ea; --muted: #9fadbc; --border: #3b444c;
    --accent: #579dff; --accent-text: #1d2125; --accent-soft: #1c2b41;
    --danger: #f87168; --danger-soft: #42221f; --ok: #4bce97; --ok-soft: #1c3329;
    --warn: #f5cd47; --warn-soft: #332e1b; --code-bg: #161a1d; --focus: #85b8ff;
    --read: #85b8ff; --read-soft: #1c2b41; --write: #fea362; --write-soft: #38291e; --on-danger: #1d2125;
  }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { font-size: 15px; }
body {
  margin: 0; background: var(--bg); color: var(--text); line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
}
a { color: var(--accent); }
a:hover { text-decoration-thickness: 2px; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
.skip { position: absolute; left: -9999px; top: 0; background: var(--surface); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 1rem; top: .5rem; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
header.top {
  background: var(--surface); border-bottom: 1px solid var(--border);
  display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; flex-wrap: wrap;
}
.brand { font-weight: 700; font-size: 1.05rem; display: flex; align-items: center; gap: .5rem; color: var(--text); text-decoration: none; }
.brand svg { color: var(--accent); }
header nav ul { display: flex; gap: .25rem; list-style: none; margin: 0; padding: 0; }
header nav a { display: block; padding: .35rem .7rem; border-radius: 6px; text-decoration: none; color: var(--muted); font-weight: 500; }
header nav a:hover { background: var(--accent-soft); color: var(--text); }
header nav a[aria-current="page"] { background: var(--accent-soft); color: var(--accent); }
.account { margin-left: auto; display: flex; align-items: center; gap: .75rem; color: var(--muted); }
.account form { margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: .25rem 0 1rem; line-height: 1.25; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
p.lead { color: var(--muted); margin-top: -.5rem; }
.card { background: var(--surface); border: 1px solid var(--border); border-radius: 10px; padding: 1.25rem; margin-bottom: 1.25rem; }
.card.narrow { max-width: 28rem; margin-left: auto; margin-right: auto; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .93rem; }
th, td { text-align: left; padding: .55rem .6rem; border-bottom: 1px solid var(--border); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
td.actions { white-space: nowrap; text-align: right; }
td.actions form { display: inline; }
.sub { color: var(--muted); font-size: .85rem; display: block; }
.empty { color: var(--muted); padding: 1rem 0; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; font-weight: 600; }
.badge.read { background: var(--read-soft); color: var(--read); }
.badge.write { background: var(--write-soft); color: var(--write); }
.badge.active { background: var(--ok-soft); color: var(--ok); }
.badge.expiring { background: var(--warn-soft); color: var(--warn); }
.restrictions { margin: 0; padding: 0; list-style: none; font-size: .85rem; }
.restrictions li { white-space: nowrap; }
form.stack { display: grid; gap: 1rem; }
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); align-items: start; }
.field { display: grid; gap: .3rem; }
label, legend { font-weight: 600; font-size: .92rem; }
fieldset { border: 0; margin: 0; padding: 0; min-width: 0; }
.hint { color: var(--muted); font-size: .84rem; margin: 0; }
.error-text { color: var(--danger); font-size: .88rem; margin: 0; font-weight: 600; }
input[type=text], input[type=password], input[type=date], input[type=search], select, textarea {
  font: inherit; color: var(--text); background: var(--surface); border: 1px solid var(--border);
  border-radius: 6px; padding: .45rem .6rem; width: 100%;
}
textarea { min-height: 4.5rem; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
input[aria-invalid=true] { border-color: var(--danger); }
.choices { display: flex; gap: 1.25rem; flex-wrap: wrap; }
.choice { display: flex; gap: .4rem; align-items: center; font-weight: 500; }
.choice input:disabled + span { color: var(--muted); }
details > summary { cursor: pointer; font-weight: 600; color: var(--accent); }
details[open] > summary { margin-bottom: .75rem; }
.buttons { display: flex; gap: .6rem; flex-wrap: wrap; align-items: center; }
button, .button {
  font: inherit; font-weight: 600; border-radius: 6px; padding: .45rem 1rem; cursor: pointer;
  border: 1px solid var(--border); background: var(--surface); color: var(--text); text-decoration: none; display: inline-block;
}
button:hover, .button:hover { background: var(--bg); }
button.primary, .button.primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
button.primary:hover { filter: brightness(1.08); }
button.danger { background: var(--danger); color: var(--on-danger); border-color: var(--danger); }
button.link-danger { background: none; border: 0; color: var(--danger); padding: .2rem .4rem; font-weight: 500; }
button.link-danger:hover { text-decoration: underline; }
button.small, .button.small { padding: .2rem .6rem; font-size: .85rem; }
.alert { border-radius: 8px; padding: .75rem 1rem; margin-bottom: 1.25rem; border: 1px solid transparent; }
.alert.success { background: var(--ok-soft); color: var(--ok); border-color: var(--ok); }
.alert.error { background: var(--danger-soft); color: var(--danger); border-color: var(--danger); }
.alert.warning { background: var(--warn-soft); color: var(--warn); border-color: var(--warn); }
.alert p { margin: .25rem 0 0; }
.secret { display: flex; gap: .5rem; align-items: stretch; flex-wrap: wrap; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.secret code {
  flex: 1 1 24rem; background: var(--code-bg); border: 1px dashed var(--accent); border-radius: 6px;
  padding: .6rem .75rem; font-size: 1rem; word-break: break-all;
}
pre { background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px; padding: .75rem; overflow-x: auto; font-size: .86rem; margin: .4rem 0 1rem; white-space: pre-wrap; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1.25rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.pager { display: flex; gap: 1rem; justify-content: space-between; align-items: center; margin-top: 1rem; color: var(--muted); }
.login { max-width: 26rem; margin: 3rem auto; }
.login .card { padding: 1.75rem; }
.login h1 { text-align: center; }
.copied { color: var(--ok); font-weight: 600; font-size: .88rem; }
pre + button { margin-bottom: .75rem; }
@media (max-width: 640px) { main { padding: 1rem; } header.top { padding: .6rem 1rem; } }
`;
