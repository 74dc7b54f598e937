import { TaskSlots } from './task-slots';

describe('TaskSlots (WORKER_CONCURRENCY in tasks)', () => {
  it('grants what is free, up to what was asked, first come first served', async () => {
    const slots = new TaskSlots(10);
    expect(await slots.take(4)).toBe(4);
    expect(await slots.take(100)).toBe(6); // a bundle of 100 gets the 6 left
    const order: string[] = [];
    const waiting = [slots.take(3).then((n) => order.push(`a${n}`)), slots.take(1).then((n) => order.push(`b${n}`))];
    slots.give(2);
    await Promise.resolve();
    expect(order).toEqual(['a2']); // the first in line takes both freed slots
    slots.give(1);
    await Promise.all(waiting);
    expect(order).toEqual(['a2', 'b1']);
    expect(slots.inUse()).toBe(10);
  });

  it('on shutdown grants nothing to whoever waits or asks', async () => {
    const slots = new TaskSlots(1);
    await slots.take(1);
    const waiter = slots.take(5);
    slots.refuseWaiting();
    expect(await waiter).toBe(0);
    slots.give(1);
    expect(await slots.take(1)).toBe(0);
  });
});
