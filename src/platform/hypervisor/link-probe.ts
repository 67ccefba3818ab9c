/** Whether an interface exists in this network namespace (rtnetlink), opened on first use. */
export class LinkProbe {
  #rtnl: { linkByName(n: string): Promise<unknown>; close(): void } | null = null;

  async exists(name: string): Promise<boolean> {
    if (!this.#rtnl) {
      const { Rtnl } = await import('../linux/rtnl.js');
      this.#rtnl = Rtnl.open();
    }
    return (await this.#rtnl.linkByName(name)) !== null;
  }

  close(): void {
    this.#rtnl?.close();
    this.#rtnl = null;
  }
}
