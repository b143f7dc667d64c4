// The API key lives in this tab's sessionStorage only: it is gone when the tab closes and is never
// shared with other tabs or written to disk by the page.
const STORAGE_NAME = "chatrelay.apiKey";

export const session = {
  key() {
    return sessionStorage.getItem(STORAGE_NAME);
  },
  signIn(key) {
    sessionStorage.setItem(STORAGE_NAME, key);
  },
  signOut() {
    sessionStorage.removeItem(STORAGE_NAME);
  },
};
