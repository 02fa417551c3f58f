/** Starts a download from an address made just now: the address carries a short-lived stream
 * token (`streamUrl`), so it is made on click rather than kept in a link. */
export async function download(makeUrl: () => Promise<string>, name: string): Promise<void> {
  const a = document.createElement("a");
  a.href = await makeUrl();
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}
